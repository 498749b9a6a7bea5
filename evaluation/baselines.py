"""Reference predictions that need no network, written in the layout the scorers read.

``copy_first_mask``: every object keeps the mask it was given at its first annotated frame for the
rest of the video (DAVIS: frame 0; YouTubeVOS: each object from the frame where it is first given,
later-given objects drawn over earlier ones, as the segmenter merges them). A segmenter that does not
beat it has learnt nothing about motion.
"""
from pathlib import Path

import numpy as np

from dataset.benchmark_readers import DavisReader, YouTubeReader
from util.palette import write_label_png

__all__ = ["copy_first_mask_davis", "copy_first_mask_youtube"]


def copy_first_mask_davis(davis_root, output, split="val"):
    """Write ``output/<video>/<frame>.png`` for every frame of the split; returns ``output``."""
    reader = DavisReader(davis_root, split=split)
    for name in reader.sequences:
        video = reader.video(name)
        first = video.annotation(video.frame_names[0])
        for frame in video.frame_names:
            write_label_png(Path(output) / name / f"{frame}.png", first, video.palette)
    return Path(output)


def copy_first_mask_youtube(yv_root, output, split="valid"):
    """Write ``output/Annotations/<video>/<frame>.png`` for the split's output frames; returns ``output``."""
    reader = YouTubeReader(yv_root, split=split)
    for name in reader.videos:
        video = reader.video(name)
        given = reader.given_masks(video)
        current = np.zeros(video.size, np.uint8)
        for index, frame in enumerate(video.frame_names):
            if index in given:
                current = np.where(given[index] != 0, given[index], current).astype(np.uint8)
            if frame in video.required_names:
                write_label_png(Path(output) / "Annotations" / name / f"{frame}.png", current, video.palette)
    return Path(output)
