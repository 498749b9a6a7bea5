"""Temporary files and folders a killed run leaves behind, and whether a process still runs.

Names (see ``util.palette.atomic_file`` / ``publish_directory`` and the trainer's ``atomic_save``):
``.<name>.<random>.tmp`` files, ``.<name>.<random>.partial`` folders, and ``.<name>.tmp<pid>`` files.
"""
import os
import re
import shutil
from pathlib import Path

_TRAINER_TEMPORARY = re.compile(r"^\..+\.tmp(\d+)$")


def is_leftover(name):
    """Whether ``name`` is one of our temporary file or folder names."""
    return name.startswith(".") and (name.endswith(".tmp") or name.endswith(".partial")
                                     or _TRAINER_TEMPORARY.match(name) is not None)


def remove_leftovers(folder):
    """Delete every temporary file/folder under ``folder`` (recursively); only call this while no other
    process writes there. Returns the removed paths."""
    removed = []
    for parent, dirs, files in os.walk(folder):
        for name in [d for d in dirs if is_leftover(d)]:
            shutil.rmtree(Path(parent) / name, ignore_errors=True)
            dirs.remove(name)
            removed.append(Path(parent) / name)
        for name in files:
            if is_leftover(name):
                (Path(parent) / name).unlink(missing_ok=True)
                removed.append(Path(parent) / name)
    return removed


def remove_dead_temporaries(folder):
    """Delete the ``.<name>.tmp<pid>`` files in ``folder`` whose writing process is gone (same host);
    returns the removed paths. Safe while other processes write there."""
    removed = []
    folder = Path(folder)
    if not folder.is_dir():
        return removed
    for path in folder.iterdir():
        match = _TRAINER_TEMPORARY.match(path.name)
        if match and path.is_file() and not pid_alive(int(match.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def pid_alive(pid):
    """Whether a process with this id runs on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def process_start_time(pid):
    """The kernel's start time of process ``pid`` (clock ticks since boot), or None where unknown.

    A pid can be reused; (pid, start time) names one process."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return int(fields[19])  # field 22 of stat(5); fields after the command name start at 3
    except (OSError, IndexError, ValueError):
        return None
