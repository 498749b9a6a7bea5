"""SIGINT and SIGTERM as an exception, so ``finally``/``except BaseException`` clean-ups run on a kill.

    with raise_on_signals():
        ...   # SIGTERM or Ctrl-C raises Interrupted here; temporary files are removed on the way out
        with signals_held():
            ...   # a step that must not be cut in half (publish a folder and record it): a signal
                  # arriving here is raised when the block ends
        except BaseException:
            with signals_held(reraise=False):
                ...   # clean-up on the way out: a second signal (torchrun's SIGTERM after an
                      # error, a second Ctrl-C) must not cut it short, and changes nothing after it
            raise
"""
import contextlib
import signal
import threading

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_held = {"depth": 0, "pending": None}


class Interrupted(KeyboardInterrupt):
    """The process received SIGINT or SIGTERM; ``exit_status`` is the shell's 128 + signal number."""

    def __init__(self, signum):
        self.signum = signum
        self.exit_status = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


@contextlib.contextmanager
def raise_on_signals():
    """Within the block SIGINT/SIGTERM raise ``Interrupted`` (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if _held["depth"]:
            _held["pending"] = signum
            return
        raise Interrupted(signum)

    previous = {signum: signal.signal(signum, handler) for signum in HANDLED_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextlib.contextmanager
def signals_held(reraise=True):
    """Within ``raise_on_signals``, hold a SIGINT/SIGTERM back until the block ends, then raise it
    (``reraise=False``: drop it, for clean-ups of a process already on its way out)."""
    _held["depth"] += 1
    try:
        yield
    finally:
        _held["depth"] -= 1
        pending = _held["pending"]
        if not _held["depth"] and pending is not None:
            _held["pending"] = None
            if reraise:
                raise Interrupted(pending)
