"""Seeded static images for stage-0 pre-training, in STCN's static layout (``NAME.jpg`` + ``NAME.png``).

Each image is frame 0 of a ``SyntheticVideo`` holding 1..``max_objects`` textured shapes on a textured
background; its mask (255 on the object, 0 elsewhere) marks one of them, so the others are distractors
the network must learn to leave out, as in the salient-object sets the paper uses.

    write_synthetic_static("data/static", seed=0, count=200, height=96, width=160)
    train.py --stage 0 --static_root data/static ...

``write_static_images`` writes the pairs into any list of folders (the training layout of
``dataset.synthetic_training`` uses it for static/BIG_small, static/ECSSD and static/FSS/<class>).
"""
from pathlib import Path

import cv2
import numpy as np

from dataset.synthetic import SyntheticVideo, _fresh_root, _write_jpeg

__all__ = ["write_static_images", "write_synthetic_static"]

STATIC_SET_NAME = "shapes"   # the one image set (sub-folder) written by write_synthetic_static


def write_static_images(folders, seed=0, count=100, height=96, width=160, max_objects=3, deform=0.0):
    """Write ``count`` pairs ``img_NNNNN.jpg`` + ``img_NNNNN.png`` into each of ``folders``; returns the
    list of image paths. The number NNNNN runs on across the folders, so no two images share a seed."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    rng = np.random.default_rng([seed, 0x57A7])
    paths = []
    for folder in folders:
        for _ in range(count):
            index = len(paths)
            k = int(rng.integers(1, max_objects + 1))
            video = SyntheticVideo(seed=int(seed) * 1_000_003 + 50_021 + index, height=height, width=width,
                                   num_objects=k, length=1, edge_crossers=0, deform=deform)
            rgb, labels = video.frame(0)
            target = int(rng.choice([i for i in video.object_ids if (labels == i).any()]))
            image_path = Path(folder) / f"img_{index:05d}.jpg"
            _write_jpeg(image_path, rgb)
            mask_path = image_path.with_suffix(".png")
            if not cv2.imwrite(str(mask_path), np.where(labels == target, 255, 0).astype(np.uint8)):
                raise OSError(f"{mask_path}: could not write the mask")
            paths.append(image_path)
    return paths


def write_synthetic_static(root, seed=0, count=100, height=96, width=160, max_objects=3, deform=0.0,
                           overwrite=False):
    """Write ``count`` image/mask pairs under ``root/shapes/``; returns the list of image paths."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    root = _fresh_root(root, overwrite)
    return write_static_images([root / STATIC_SET_NAME], seed=seed, count=count, height=height, width=width,
                               max_objects=max_objects, deform=deform)
