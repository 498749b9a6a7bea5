"""Finding training data on disk, and the one error type a bad dataset folder raises."""
from pathlib import Path

from util.image_files import ImageFileError, is_hidden
from util.image_files import read_rgb as read_image

__all__ = ["DatasetFolderError", "IMAGE_SUFFIXES", "require_folder", "read_rgb", "list_frames", "list_folders"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class DatasetFolderError(ValueError):
    """A dataset folder is missing or does not have the published layout; the message says which."""


def require_folder(path, what, layout):
    """``path`` as a Path if it is a directory, else a DatasetFolderError naming it and ``layout``."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetFolderError(f"{what} folder {path} does not exist; expected {layout}")
    return path


def read_rgb(path, mode="RGB"):
    """H x W x 3 uint8 RGB image (or PIL ``mode``), decoded completely; DatasetFolderError naming a
    missing, truncated or corrupt file."""
    try:
        return read_image(path, mode)
    except ImageFileError as error:
        raise DatasetFolderError(str(error)) from None


def list_frames(folder, suffixes=IMAGE_SUFFIXES):
    """Image files directly inside ``folder``, sorted by name; hidden files (``._*``, ``.DS_Store``) skipped."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and p.suffix.lower() in suffixes and not is_hidden(p))


def list_folders(folder):
    """Sub-folder names of ``folder``, sorted; hidden ones skipped."""
    return sorted(p.name for p in Path(folder).iterdir() if p.is_dir() and not is_hidden(p))
