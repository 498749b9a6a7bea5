"""Label PNGs as the DAVIS and YouTubeVOS benchmarks store them.

* ``davis_palette()``: the 256-colour palette of the DAVIS (= PASCAL VOC) annotation PNGs.
* ``read_label_png(path)``: indexed (palette) PNGs give their indices, grayscale PNGs their values, and
  RGB PNGs are accepted when every colour is an entry of the palette (the DAVIS one unless given);
  anything else raises ``LabelImageError`` naming the file.
* ``write_label_png(path, labels, palette)``: an indexed PNG written atomically (``util.atomic_files``).
"""
from pathlib import Path

import numpy as np
from PIL import Image

from util.atomic_files import atomic_file

PALETTE_SIZE = 256


class LabelImageError(ValueError):
    """A label PNG that cannot be read as a label map; the message names the file."""


def davis_palette():
    """(256, 3) uint8 DAVIS palette (a fresh copy)."""
    return _DAVIS_PALETTE.copy()


def _make_davis_palette():
    """Entry i spreads the bits of i over R, G, B from the top bit down (the PASCAL VOC colour map)."""
    palette = np.zeros((PALETTE_SIZE, 3), np.uint8)
    for index in range(PALETTE_SIZE):
        code, colour = index, [0, 0, 0]
        for shift in range(7, -1, -1):
            for channel in range(3):
                colour[channel] |= ((code >> channel) & 1) << shift
            code >>= 3
        palette[index] = colour
    return palette


_DAVIS_PALETTE = _make_davis_palette()


def as_palette_array(palette):
    """Any palette (flat list from PIL, bytes, (N, 3) array; None = DAVIS) as a (256, 3) uint8 array.

    Short palettes keep their entries and are completed with the DAVIS colours.
    """
    full = davis_palette()
    if palette is None:
        return full
    entries = np.asarray(list(palette) if isinstance(palette, (bytes, bytearray)) else palette,
                         dtype=np.int64).reshape(-1)
    if entries.size % 3 or entries.size > 3 * PALETTE_SIZE or entries.min(initial=0) < 0 \
            or entries.max(initial=0) > 255:
        raise ValueError(f"a palette is at most 256 RGB triplets of 0..255, got {entries.size} values")
    entries = entries.reshape(-1, 3).astype(np.uint8)
    full[:len(entries)] = entries
    return full


def read_label_png(path, palette=None):
    """Read a label PNG as ``(labels uint8 HxW, palette (256, 3) uint8 or None)``.

    The palette returned is the file's own (indexed PNGs) or None. RGB(A) files map each colour onto
    ``palette`` (default DAVIS); a colour absent from it raises ``LabelImageError``.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
    except FileNotFoundError:
        raise LabelImageError(f"{path}: file not found") from None
    except Exception as error:  # PIL raises many types for broken files
        raise LabelImageError(f"{path}: not a readable image ({error})") from None

    mode = image.mode
    if mode in ("P", "PA"):
        labels = np.asarray(image.convert("P") if mode == "PA" else image, dtype=np.uint8)
        return labels.copy(), as_palette_array(image.getpalette())
    if mode in ("L", "LA", "1"):
        labels = np.asarray(image.convert("L"), dtype=np.uint8)
        return (labels > 0).astype(np.uint8) if mode == "1" else labels.copy(), None
    if mode in ("I", "I;16", "I;16B", "I;16L"):
        values = np.asarray(image, dtype=np.int64)
        if values.min() < 0 or values.max() > 255:
            raise LabelImageError(f"{path}: 16/32-bit label PNG with values outside 0..255")
        return values.astype(np.uint8), None
    if mode in ("RGB", "RGBA"):
        return _map_colours(path, np.asarray(image.convert("RGB")), palette), None
    raise LabelImageError(f"{path}: unsupported PNG mode {mode!r}; write indexed or grayscale label PNGs")


def _map_colours(path, rgb, palette):
    colours = as_palette_array(palette).astype(np.int64)
    codes = (colours[:, 0] << 16) | (colours[:, 1] << 8) | colours[:, 2]
    first_index = {}
    for index, code in enumerate(codes.tolist()):
        first_index.setdefault(code, index)  # duplicated palette colours: the lowest index wins
    pixels = rgb.astype(np.int64)
    pixel_codes = (pixels[..., 0] << 16) | (pixels[..., 1] << 8) | pixels[..., 2]
    unique, inverse = np.unique(pixel_codes, return_inverse=True)
    missing = [code for code in unique.tolist() if code not in first_index]
    if missing:
        example = missing[0]
        raise LabelImageError(
            f"{path}: RGB label PNG with {len(missing)} colour(s) not in the palette, e.g. "
            f"{(example >> 16, (example >> 8) & 255, example & 255)}; save labels as an indexed PNG")
    lookup = np.array([first_index[code] for code in unique.tolist()], np.uint8)
    return lookup[inverse.reshape(pixel_codes.shape)]


def write_label_png(path, labels, palette=None):
    """Write ``labels`` (HxW, integers 0..255) as an indexed PNG with ``palette`` (default DAVIS)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{path}: a label map is 2-D, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"{path}: labels must lie in 0..255, got {labels.min()}..{labels.max()}")
    height, width = labels.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(labels, np.uint8).tobytes())
    image.putpalette(as_palette_array(palette).reshape(-1).tolist())
    with atomic_file(path) as temporary:
        image.save(temporary, format="PNG")
