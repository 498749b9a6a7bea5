"""Finding training data on disk, and the one error type a bad dataset folder raises."""
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["DatasetFolderError", "IMAGE_SUFFIXES", "require_folder", "read_rgb", "list_frames"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


class DatasetFolderError(ValueError):
    """A dataset folder is missing or does not have the published layout; the message says which."""


def require_folder(path, what, layout):
    """``path`` as a Path if it is a directory, else a DatasetFolderError naming it and ``layout``."""
    path = Path(path)
    if not path.is_dir():
        raise DatasetFolderError(f"{what} folder {path} does not exist; expected {layout}")
    return path


def read_rgb(path):
    """H x W x 3 uint8 RGB image."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).copy()


def list_frames(folder, suffixes=IMAGE_SUFFIXES):
    """Image files directly inside ``folder``, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in suffixes)
