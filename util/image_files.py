"""Reading frames completely: a truncated or corrupt image is an error naming the file.

PIL decodes the whole file in ``Image.load()`` and raises on a truncated one (as long as
``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` keeps its default False, which nothing in this project
changes); OpenCV's reader instead returns the decoded part with a grey remainder and only prints
libjpeg's warning, so it is not used for frames.
"""
from pathlib import Path

import numpy as np
from PIL import Image

HIDDEN_PREFIX = "."  # ._* (macOS resource forks), .DS_Store and our own temporary files


class ImageFileError(ValueError):
    """An image file that is missing or cannot be decoded completely; the message names the file."""


def read_rgb(path, mode="RGB"):
    """H x W x 3 uint8 RGB image (or another PIL ``mode``, e.g. "L": H x W), decoded completely, or
    ImageFileError naming the file."""
    try:
        with Image.open(path) as image:
            image.load()
            return np.array(image.convert(mode))
    except FileNotFoundError:
        raise ImageFileError(f"{path}: image file is missing") from None
    except Exception as error:  # PIL raises many types for broken files
        raise ImageFileError(f"{path}: not a readable image ({error})") from None


def is_hidden(path):
    """Whether a file or folder name is hidden (skipped when listing frames, annotations and videos)."""
    return Path(path).name.startswith(HIDDEN_PREFIX)
