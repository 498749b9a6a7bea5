"""Gaps in the data are reported, never silent: a warning line naming the video or file, or with
``--strict`` an error (raised before anything is written, since the eval scripts check data first)."""
import sys


class GapError(ValueError):
    """A gap in the data reported as an error because of --strict."""


def report_gap(message, strict):
    """Print ``warning: <message>`` on stderr, or raise GapError when ``strict``."""
    if strict:
        raise GapError(f"{message} (--strict turns this warning into an error)")
    print(f"warning: {message}", file=sys.stderr, flush=True)
