"""Masks drawn over their frames: an MP4 to watch and a short GIF preview.

Used by ``eval_generic.py --overlay`` and ``scripts/visualize.py`` (any result folder). Each object is
blended over the frame in its palette colour, outlined in that colour, and its label id is written
at its centroid. Files appear only when complete (written under a temporary name, then renamed).
"""
import math
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from tqdm import tqdm

from util.atomic_files import atomic_file
from util.palette import as_palette_array, read_label_png

OVERLAY_ALPHA = 0.5   # weight of the object colour over the frame
DEFAULT_FPS = 24      # frame folders carry no frame rate; DAVIS was filmed at 24 frames/s
MP4_CODEC = "mp4v"    # MPEG-4 Part 2: always available in OpenCV's wheels (H.264 often is not)
GIF_FRAMES = 40       # the preview spans the whole video in at most this many frames
GIF_MAX_SIDE = 320    # pixels, longer side of the preview


def draw_overlay(frame, labels, palette=None, alpha=OVERLAY_ALPHA):
    """RGB frame (HxWx3 uint8) with every object of ``labels`` (HxW) blended, outlined and numbered."""
    if labels.shape != frame.shape[:2]:
        raise ValueError(f"mask is {labels.shape[0]}x{labels.shape[1]} but its frame is "
                         f"{frame.shape[0]}x{frame.shape[1]}")
    colours = as_palette_array(palette)
    out = frame.copy()
    inside = labels != 0
    out[inside] = np.round(frame[inside] * (1 - alpha) + colours[labels[inside]] * alpha).astype(np.uint8)
    line = max(1, min(labels.shape) // 240)
    for obj in np.unique(labels[inside]):
        mask = (labels == obj).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in colours[obj]), line)
        ys, xs = np.nonzero(mask)
        _write_id(out, str(obj), xs.mean(), ys.mean())
    return out


def _write_id(image, text, x, y):
    """White text with a black rim, centred on (x, y)."""
    font = cv2.FONT_HERSHEY_SIMPLEX
    scale = max(0.35, min(image.shape[:2]) / 600)
    thickness = max(1, round(scale * 2))
    (width, height), _ = cv2.getTextSize(text, font, scale, thickness)
    origin = (int(round(x - width / 2)), int(round(y + height / 2)))
    cv2.putText(image, text, origin, font, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, font, scale, (255, 255, 255), thickness, cv2.LINE_AA)


class OverlayWriter:
    """Context manager collecting RGB frames into ``path`` (MP4) and, optionally, a GIF preview made of
    every ``gif_stride``-th frame (at most ``GIF_FRAMES``, longer side ``GIF_MAX_SIDE``). Both files
    appear only when the block succeeds with at least one frame."""

    def __init__(self, path, fps=DEFAULT_FPS, gif_path=None, gif_stride=1):
        if not fps or fps <= 0:
            raise ValueError(f"{path}: frame rate must be positive, got {fps}")
        self.path, self.fps, self.gif_path, self.gif_stride = Path(path), float(fps), gif_path, gif_stride
        self.count = 0
        self._gif_frames = []
        self._writer = self._temporary = None

    def __enter__(self):
        return self

    def add(self, rgb):
        if self._writer is None:
            self._open(rgb.shape[1], rgb.shape[0])
        self._writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        if self.gif_path is not None and self.count % self.gif_stride == 0 and len(self._gif_frames) < GIF_FRAMES:
            scale = min(1.0, GIF_MAX_SIDE / max(rgb.shape[:2]))
            size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
            self._gif_frames.append(Image.fromarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)))
        self.count += 1

    def _open(self, width, height):
        # OpenCV picks the container from the file name, so the MP4 is written under its own name inside
        # a temporary ".<name>.<random>.partial" folder (the naming of util.palette.publish_directory)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._temporary = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", suffix=".partial",
                                                dir=self.path.parent))
        temporary = str(self._temporary / self.path.name)
        self._writer = cv2.VideoWriter(temporary, cv2.VideoWriter_fourcc(*MP4_CODEC), self.fps, (width, height))
        if not self._writer.isOpened():
            raise ValueError(f"{self.path}: OpenCV cannot write an MP4 video ({MP4_CODEC} codec) here")

    def __exit__(self, error_type, error, trace):
        if self._writer is not None:
            self._writer.release()
        try:
            if error_type is None and self.count == 0:
                raise ValueError(f"{self.path}: no frame has a mask to draw")
            if error_type is None:
                if self.gif_path is not None:
                    self._write_gif()
                os.replace(self._temporary / self.path.name, self.path)
        finally:
            if self._temporary is not None:
                shutil.rmtree(self._temporary, ignore_errors=True)
        return False

    def _write_gif(self):
        milliseconds = max(20, round(1000 * self.gif_stride / self.fps))
        first, *rest = self._gif_frames
        with atomic_file(self.gif_path) as temporary:
            first.save(temporary, format="GIF", save_all=True, append_images=rest, duration=milliseconds, loop=0)


def write_overlay(frame_names, frames, mask_folder, path, fps=DEFAULT_FPS, gif_path=None):
    """Draw ``mask_folder/<name>.png`` over every frame that has one (frames without a mask are left
    out, e.g. YouTubeVOS's unannotated frames); returns the number of frames drawn.

    frame_names, frames: parallel iterables (names may be endless, frames are streamed).
    A mask without a frame, or of another size than its frame, raises ValueError naming the file.
    """
    mask_folder = Path(mask_folder)
    if not mask_folder.is_dir():
        raise ValueError(f"{mask_folder}: mask folder is missing")
    masks = {p.stem: p for p in sorted(mask_folder.glob("*.png"))}
    if not masks:
        raise ValueError(f"{mask_folder}: holds no mask PNGs")
    drawn = set()
    stride = max(1, math.ceil(len(masks) / GIF_FRAMES))
    with OverlayWriter(path, fps, gif_path, stride) as writer, \
            tqdm(total=len(masks), desc=f"overlay {Path(path).name}", unit="frame", leave=False) as bar:
        for name, frame in zip(frame_names, frames):
            if name not in masks:
                continue
            labels, palette = read_label_png(masks[name])  # a LabelImageError names the file
            try:
                drawn_frame = draw_overlay(frame, labels, palette)
            except ValueError as error:
                raise ValueError(f"{masks[name]}: {error}") from None
            writer.add(drawn_frame)
            drawn.add(name)
            bar.update(1)
        orphans = sorted(set(masks) - drawn)
        if orphans:
            raise ValueError(f"{masks[orphans[0]]}: mask without a frame ({len(orphans)} such mask(s))")
    return writer.count
