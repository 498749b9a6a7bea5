"""Static-image pre-training (stage 0): every image + mask becomes a 3-frame pseudo video.

Layout (STCN's static set, e.g. ``static/{BIG_small, DUTS-TE, DUTS-TR, ECSSD, FSS, HRSOD_small}``):
each set is a folder holding ``NAME.jpg`` images with ``NAME.png`` masks beside them, possibly in
sub-folders (FSS-1000 has one per class). Masks are grayscale (object > 127).

Augmentation (STCN appendix F.3.1): on the base image a random scaling of [0.8, 1.5], horizontal
flip, colour jitter (0.1, 0.05, 0.05, hue 0.05) and grayscale (p 0.05); then per frame a random
affine (rotation ±20°, scale [0.9, 1.1], shear ±10°) and colour jitter (0.1, 0.05, 0.05), resize
of the shorter side to the crop size, a random square crop, and with probability 1/3 a
thin-plate-spline warp (12 control points, displacement std 0.02 of the image size).
The geometric steps before the crop are composed into one affine warp per frame.
"""
from pathlib import Path

import numpy as np

from dataset.augment import IMAGE_FILL, affine_matrix, color_jitter, random_affine_matrix, random_grayscale, warp_affine
from dataset.clip import make_clip, with_extras
from dataset.folders import DatasetFolderError, list_folders, read_rgb, require_folder
from dataset.sampler import sample_rng
from dataset.tps import random_tps_warp
from util.image_files import is_hidden

__all__ = ["StaticImageDataset", "find_image_mask_pairs", "static_sets"]

STATIC_LAYOUT = "image files NAME.jpg with masks NAME.png beside them (sub-folders allowed)"
HIGH_QUALITY_SETS = ("BIG", "HRSOD")   # their annotations are better: seen 5x as often
HIGH_QUALITY_REPEAT = 5


def find_image_mask_pairs(folder):
    """Sorted (image, mask) path pairs under ``folder``: any non-PNG image with a same-named PNG."""
    folder = require_folder(folder, "static image", STATIC_LAYOUT)
    pairs = []
    for mask in sorted(folder.rglob("*.png")):
        if any(is_hidden(part) for part in mask.relative_to(folder).parts):
            continue  # ._* and .DS_Store files, hidden folders
        for suffix in (".jpg", ".jpeg", ".JPG", ".bmp"):
            image = mask.with_suffix(suffix)
            if image.exists():
                pairs.append((image, mask))
                break
    if not pairs:
        raise DatasetFolderError(f"static image folder {folder} holds no image/mask pairs; expected "
                                 f"{STATIC_LAYOUT}")
    return pairs


def static_sets(root):
    """(folder, repeat) of each set under ``root``: BIG*/HRSOD* sets 5x, others 1x.

    A ``root`` that directly holds image/mask pairs (and no sub-folders) is one set."""
    root = require_folder(root, "static image", "one sub-folder per image set")
    subfolders = [root / name for name in list_folders(root)]
    if not subfolders:
        return [(root, 1)]
    return [(p, HIGH_QUALITY_REPEAT if p.name.upper().startswith(HIGH_QUALITY_SETS) else 1)
            for p in subfolders]


class StaticImageDataset:
    """Pseudo videos from static images. ``sets``: list of (folder, repeat); ``sample_extras``: see
    ``dataset.clip.with_extras``."""

    def __init__(self, sets, size=384, num_frames=3, max_objects=2, tps_probability=1 / 3,
                 tps_points=12, tps_std=0.02, first_frame_tries=5, sample_extras=None):
        self.sample_extras = sample_extras
        self.items = []
        for folder, repeat in sets:
            self.items.extend(find_image_mask_pairs(folder) * int(repeat))
        if not self.items:
            raise DatasetFolderError(f"no static image sets given ({sets!r})")
        self.size = size
        self.num_frames = num_frames
        self.max_objects = max_objects
        self.tps_probability = tps_probability
        self.tps_points = tps_points
        self.tps_std = tps_std
        self.first_frame_tries = first_frame_tries

    def __len__(self):
        return len(self.items)

    def _read(self, index):
        image_path, mask_path = self.items[index]
        image = read_rgb(image_path)
        mask = (read_rgb(mask_path, "L") > 127).astype(np.uint8)
        if mask.shape != image.shape[:2]:
            raise DatasetFolderError(f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image "
                                     f"{image_path} is {image.shape[1]}x{image.shape[0]}")
        return image, mask

    def _frame(self, image, mask, base, rng):
        """One synthetic frame: per-frame affine, resize + crop (one warp), jitter, optional TPS."""
        height, width = mask.shape
        frame_affine = random_affine_matrix(rng, (height, width), degrees=20, scale=(0.9, 1.1), shear=10)
        factor = self.size / min(height, width)
        new_h, new_w = max(self.size, round(height * factor)), max(self.size, round(width * factor))
        y0 = int(rng.integers(0, new_h - self.size + 1))
        x0 = int(rng.integers(0, new_w - self.size + 1))
        crop = np.array([[factor, 0.0, -x0], [0.0, factor, -y0], [0.0, 0.0, 1.0]])
        matrix = (crop @ _h(frame_affine) @ base)[:2]
        frame, (frame_mask,) = warp_affine(image, [mask], matrix, (self.size, self.size), fill=IMAGE_FILL)
        frame = color_jitter(frame, rng, brightness=0.1, contrast=0.05, saturation=0.05)
        if rng.random() < self.tps_probability:
            frame, (frame_mask,) = random_tps_warp(frame, [frame_mask], rng, self.tps_points,
                                                   self.tps_std, fill=IMAGE_FILL)
        return frame, frame_mask

    def __getitem__(self, key):
        rng = sample_rng(key)
        index = key.index if hasattr(key, "index") else int(key)
        image, mask = self._read(index)
        height, width = mask.shape
        center = ((width - 1) / 2.0, (height - 1) / 2.0)
        for _ in range(self.first_frame_tries):
            base = _h(affine_matrix(center, scale=rng.uniform(0.8, 1.5)))
            if rng.random() < 0.5:
                base = np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]) @ base
            base_image = color_jitter(image, rng, brightness=0.1, contrast=0.05, saturation=0.05, hue=0.05)
            base_image = random_grayscale(base_image, rng, p=0.05)
            frames, masks = zip(*(self._frame(base_image, mask, base, rng) for _ in range(self.num_frames)))
            if masks[0].any():
                break
        sample = make_clip(frames, [m.astype(np.int64) for m in masks], num_objects=1,
                           max_objects=self.max_objects, name=Path(self.items[index][0]).stem,
                           frame_indices=[0] * self.num_frames)
        return with_extras(sample, rng, self.sample_extras)


def _h(matrix):
    """2 x 3 affine -> 3 x 3 homogeneous."""
    return np.vstack([matrix, [0.0, 0.0, 1.0]])
