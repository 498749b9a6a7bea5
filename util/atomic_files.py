"""Outputs that appear whole or not at all: files and folders are written under a temporary sibling
name and renamed into place only when complete.

Temporary names are ``.<name>.<random>.tmp`` (files) and ``.<name>.<random>.partial`` (folders); a
killed run's leftovers are found by these names (``util.leftovers``). Published files and folders get
the permissions a plain ``open``/``mkdir`` would give (0644/0755 under the usual umask 022), not the
private 0600/0700 of ``mkstemp``/``mkdtemp``.
"""
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from util.interrupts import signals_held


def current_umask():
    """The process umask, read without changing it where /proc allows (os.umask both sets and reads)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def give_default_permissions(path, directory=False):
    """chmod ``path`` to what open()/mkdir() would have created: 0666/0777 minus the umask."""
    os.chmod(path, (0o777 if directory else 0o666) & ~current_umask())


@contextlib.contextmanager
def atomic_file(path):
    """Yield a temporary path next to ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        give_default_permissions(temporary)
        yield Path(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def publish_directory(final, on_published=None):
    """Yield an empty temporary folder next to ``final``; on success it becomes ``final``
    (replacing an older one) and ``on_published()`` runs, both without a SIGINT/SIGTERM cutting in
    between (``util.interrupts.signals_held``); on failure it is deleted and ``final`` is left untouched."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        give_default_permissions(temporary, directory=True)
        yield temporary
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    with signals_held():
        if final.exists():
            shutil.rmtree(final)
        os.replace(temporary, final)
        if on_published is not None:
            on_published()
