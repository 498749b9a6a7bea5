"""One run owns its output folder, and the folder never holds results that look current but are not.

Every evaluation entry point (eval_davis.py, eval_youtube.py, scripts/evaluate.py, and any new one)
uses ``claim_output``::

    with claim_output(args.output) as out:   # OutputFolderError if another live run holds the folder
        network = load_model(...)             # anything failing up to start() leaves nothing behind
        out.start(config)                     # the previous run's tables, zip, config and temporary
                                              # leftovers go; eval_config.json says "running"
        for video in videos:
            with out.publish(args.output / video.name, video=video.name) as folder:
                ...write the video's masks into folder...  # appears complete, and is recorded
        ...score, write tables...
        out.finish()                          # eval_config.json says "complete"

What it guarantees:

* Lock: ``<folder>/.output.lock`` holds the owner's PID, host, process start time and command line; a
  second run fails at once naming them. A lock of a process that no longer runs on this host is
  taken over with a notice on stderr; a lock from another host is never taken over (delete it by hand).
* ``start(config)`` removes every file derived from earlier masks (``DERIVED_PATTERNS``: score CSVs,
  upload zips, eval_generic.py's overlays, eval_config.json) and the temporary ``.*.tmp`` / ``.*.partial`` leftovers of killed
  runs before any new mask is written, then writes eval_config.json with ``"status": "running"`` and
  ``"videos_written": []``; ``publish(folder, video=name)`` (a ``util.palette.publish_directory``
that records the video once its folder is in place, with no signal cutting between the two) or
``video_done`` append to that list, and ``finish`` sets ``"complete"``.
  A run that fails or is interrupted sets ``"failed"`` / ``"interrupted"`` (with the error), so the
  config always says which masks beside it this run wrote and whether they are all there.
* Within the block SIGINT and SIGTERM raise ``util.interrupts.Interrupted``, so temporary files and
  folders are removed on the way out; the exit code is then 128 + the signal number.
* A failure before ``start`` (bad checkpoint, bad flag found late) deletes nothing: the lock goes,
  and the folder too when this run created it and it is still empty.

Without ``start`` (``scripts/evaluate.py``) the claim is only the lock: scoring never races a run
writing masks. Under torchrun only rank 0 claims the folder (before the other ranks write; they wait
at a barrier); the other ranks publish with ``util.palette.publish_directory`` and rank 0 calls
``video_done`` for their videos once they report them finished.
"""
import contextlib
import datetime
import json
import os
import platform
import socket
import sys
import tempfile
from pathlib import Path

import torch

from util.atomic_files import atomic_file, give_default_permissions, publish_directory
from util.interrupts import Interrupted, raise_on_signals, signals_held
from util.leftovers import pid_alive, process_start_time, remove_leftovers

LOCK_NAME = ".output.lock"
CONFIG_NAME = "eval_config.json"
DERIVED_PATTERNS = (CONFIG_NAME, "global_results-*.csv", "per-sequence_results-*.csv", "youtube_results-*.csv",
                    "youtube_per-object_results-*.csv", "*_submission.zip", "overlays/*.mp4", "overlays/*.gif")
RUNNING, COMPLETE, FAILED, INTERRUPTED = "running", "complete", "failed", "interrupted"


class OutputFolderError(ValueError):
    """The output folder cannot be used (held by another run, or not a folder); the message says why."""


def check_output_path(path, flag="--output"):
    """OutputFolderError unless ``path`` is a folder or does not exist yet (cheap; call before work)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputFolderError(f"{flag} {path} is an existing file, not a folder")
    parent = next((p for p in path.absolute().parents if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise OutputFolderError(f"{flag} {path}: {parent} is a file, not a folder")


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _remove_derived(folder):
    for pattern in DERIVED_PATTERNS:
        for path in folder.glob(pattern):
            if path.is_file():
                path.unlink()


class OutputFolder:
    """A claimed output folder; see the module docstring."""

    def __init__(self, path):
        self.path = Path(path)
        self.lock_path = self.path / LOCK_NAME
        self.config = None
        self.videos_written = []
        self.status = None

    @property
    def started(self):
        return self.config is not None

    # ---------------------------------------------------------------- run records
    def start(self, config):
        """Remove what earlier runs derived and their leftovers; write eval_config.json ("running")."""
        _remove_derived(self.path)
        remove_leftovers(self.path)
        self.config = {**config, "python": platform.python_version(), "torch": torch.__version__,
                       "started": _now()}
        self._record(RUNNING)
        return self.path / CONFIG_NAME

    def publish(self, final, video=None):
        """``publish_directory(final)``; once in place, ``video`` (if given) is recorded as written."""
        return publish_directory(final, on_published=None if video is None else lambda: self.video_done(video))

    def video_done(self, *names):
        """Record that the masks of these videos are written (published) by this run."""
        self.videos_written.extend(names)
        self._record(RUNNING)

    def finish(self, **extra):
        """The run is complete; ``extra`` (e.g. scored tables) joins the config."""
        self.config.update(extra)
        self._record(COMPLETE)

    def _record(self, status, error=None):
        self.status = status
        record = {**self.config, "status": status, "videos_written": list(self.videos_written)}
        if error is not None:
            record["error"] = error
        if status != RUNNING:
            record["ended"] = _now()
        with atomic_file(self.path / CONFIG_NAME) as temporary:
            temporary.write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n")

    # ---------------------------------------------------------------- lock
    def acquire(self, notice):
        record = {"pid": os.getpid(), "host": socket.gethostname(), "start_time": process_start_time(os.getpid()),
                  "since": _now(), "command": " ".join(sys.argv)}
        handle, temporary = tempfile.mkstemp(prefix=f"{LOCK_NAME}.", suffix=".tmp", dir=self.path)
        try:
            with os.fdopen(handle, "w") as stream:
                stream.write(json.dumps(record) + "\n")
            give_default_permissions(temporary)  # collaborators may read who holds the folder
            for _ in range(5):
                try:
                    os.link(temporary, self.lock_path)  # atomic, and fails when a lock exists
                    return
                except FileExistsError:
                    self._take_over_if_stale(notice)
        finally:
            os.unlink(temporary)
        raise OutputFolderError(f"{self.lock_path}: could not take the output folder's lock")

    def _holder(self):
        try:
            return json.loads(self.lock_path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # unreadable: no run can be identified as its owner

    def _take_over_if_stale(self, notice):
        holder = self._holder()
        if holder is None:
            return  # released meanwhile: try again
        if _holder_runs(holder):
            raise OutputFolderError(
                f"{self.path} is in use by process {holder.get('pid')} on {holder.get('host')} since "
                f"{holder.get('since')} ({holder.get('command')}); wait for it or choose another --output"
                + ("" if holder.get("host") == socket.gethostname() else
                   f" (if no such run is active on that host, delete {self.lock_path})"))
        aside = self.lock_path.with_name(f"{LOCK_NAME}.{os.getpid()}.stale.tmp")
        try:
            os.rename(self.lock_path, aside)
        except FileNotFoundError:
            return
        with contextlib.suppress(OSError, ValueError):
            if json.loads(aside.read_text()) != holder:  # another run took it over first: give it back
                with contextlib.suppress(FileExistsError):
                    os.link(aside, self.lock_path)
        aside.unlink(missing_ok=True)
        if holder:
            notice(f"notice: {self.path}: taking over the lock of process {holder.get('pid')} on "
                   f"{holder.get('host')} (since {holder.get('since')}), which is no longer running")
        else:
            notice(f"notice: {self.lock_path}: unreadable lock file replaced")

    def release(self):
        holder = self._holder()
        if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
            self.lock_path.unlink(missing_ok=True)


def _holder_runs(holder):
    if not holder:
        return False
    if holder.get("host") != socket.gethostname():
        return True  # cannot be checked from here
    pid = holder.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    started = holder.get("start_time")
    return started is None or process_start_time(pid) in (None, started)


def _print_notice(message):
    print(message, file=sys.stderr, flush=True)


def _created_folders(path):
    """The folders ``mkdir(parents=True)`` creates for ``path``, outermost first."""
    missing = []
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing.append(folder)
    return missing[::-1]


@contextlib.contextmanager
def claim_output(path, notice=_print_notice):
    """Own the output folder ``path`` for the block (created when missing); yields an ``OutputFolder``."""
    path = Path(path)
    check_output_path(path)
    created = _created_folders(path)
    path.mkdir(parents=True, exist_ok=True)
    out = OutputFolder(path)
    try:
        out.acquire(notice)
    except BaseException:
        _remove_empty(created)
        raise
    with raise_on_signals():
        try:
            yield out
        except BaseException as error:
            # on the way out: a later signal (torchrun stops every rank with SIGTERM once one fails) must
            # not cut the record or the lock's removal short
            with signals_held(reraise=False):
                if out.started and out.status == RUNNING:
                    interrupted = isinstance(error, KeyboardInterrupt)
                    with contextlib.suppress(Exception):
                        remove_leftovers(path)
                        out._record(INTERRUPTED if interrupted else FAILED,
                                    error=str(error) or type(error).__name__)
            raise
        finally:
            with signals_held(reraise=False):
                out.release()
                if not out.started:
                    _remove_empty(created)


def _remove_empty(folders):
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


__all__ = ["CONFIG_NAME", "DERIVED_PATTERNS", "Interrupted", "LOCK_NAME", "OutputFolder", "OutputFolderError",
           "check_output_path", "claim_output"]
