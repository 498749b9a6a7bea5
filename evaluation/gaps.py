"""Gaps in the data are reported, never silent: a warning line naming the video or file, or with
``--strict`` an error (raised before anything is written, since the eval scripts check data first).
Under torchrun every rank checks the same data: each raises the error, only rank 0 prints the warning."""
import sys

from evaluation.distributed import is_main_process


class GapError(ValueError):
    """A gap in the data reported as an error because of --strict."""


def report_gap(message, strict):
    """Print ``warning: <message>`` on stderr (once per run), or raise GapError when ``strict``."""
    if strict:
        raise GapError(f"{message} (--strict turns this warning into an error)")
    if is_main_process():
        print(f"warning: {message}", file=sys.stderr, flush=True)
