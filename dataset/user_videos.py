"""Your own videos: a folder of frame folders with masks where objects first appear, or a video file.

Folder layout (``FolderVideos(root)``, the published ``eval_generic.py --data_path``)::

    root/JPEGImages/<video>/<frame>.jpg|png     every frame, sorted by name
    root/Annotations/<video>/<frame>.png        any subset of frames; each object is given in the
                                                first of them that holds it (any label ids)

A video file (``VideoFile(path, mask_path)``) is decoded through OpenCV one frame at a time, so a
long video never sits in memory; ``mask_path`` is the label PNG of its first frame. Frames are named
00000, 00001, ... Both kinds of video offer ``name``, ``size``, ``palette``, ``frame_names``,
``frames()``, ``given_masks()`` and ``len()`` (for a file, the frame count its header states).
"""
import itertools
from pathlib import Path

import cv2

from dataset.benchmark_readers import (BenchmarkLayoutError, Video, _annotation_files, _check_annotation_sizes,
                                       _frame_files, first_appearance_masks, read_rgb)
from dataset.folders import list_folders
from util.palette import LabelImageError, davis_palette, read_label_png


class FolderVideo(Video):
    """A video of a ``FolderVideos`` root."""
    fps = None  # frame folders do not say

    def given_masks(self):
        """{frame index: label map} holding each object in the first annotation that holds it."""
        masks = first_appearance_masks(self)
        if not masks:
            folder = next(iter(self.annotation_paths.values())).parent
            raise BenchmarkLayoutError(f"{folder}: the annotations of video {self.name} hold no object "
                                       f"(every pixel is 0)")
        return masks


class FolderVideos:
    """The videos under ``root/JPEGImages``, sorted by name; ``video(name)`` checks one's layout."""

    def __init__(self, root):
        self.root = Path(root)
        self.frame_root = self.root / "JPEGImages"
        self.annotation_root = self.root / "Annotations"
        if not self.frame_root.is_dir():
            raise BenchmarkLayoutError(f"{self.frame_root}: folder is missing; --data_path should hold "
                                       f"JPEGImages/<video>/ (frames) and Annotations/<video>/ (masks)")
        self.videos = list_folders(self.frame_root)  # hidden folders skipped
        if not self.videos:
            raise BenchmarkLayoutError(f"{self.frame_root}: holds no video folders")

    def video(self, name):
        frames = _frame_files(self.frame_root / name)
        annotation_dir = self.annotation_root / name
        annotations = _annotation_files(annotation_dir)
        if not annotations:
            raise BenchmarkLayoutError(f"{annotation_dir}: video {name} has no annotation PNGs; give each object's "
                                       f"mask as <frame>.png for the frame where it first appears")
        names = {p.stem for p in frames}
        for stem, path in annotations.items():
            if stem not in names:
                raise BenchmarkLayoutError(f"{path}: annotation without a frame in {self.frame_root / name}")
        video = FolderVideo(name, frames, annotations)
        _check_annotation_sizes(video)
        return video


class VideoFile:
    """A video file streamed through OpenCV, with the label map of its first frame (``mask_path``)."""

    def __init__(self, path, mask_path=None):
        self.path = Path(path)
        self.name = self.path.stem
        if not self.path.is_file():
            raise BenchmarkLayoutError(f"{self.path}: no such video file")
        capture = self._open()
        try:
            ok, first = capture.read()
            self.fps = capture.get(cv2.CAP_PROP_FPS) or None
            self.stated_frames = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
        finally:
            capture.release()
        if not ok:
            raise BenchmarkLayoutError(f"{self.path}: no frame could be decoded (not a video OpenCV can read)")
        self.size = first.shape[:2]
        self.mask, self.palette = None, davis_palette()
        if mask_path is not None:
            self._read_mask(mask_path)

    def _read_mask(self, mask_path):
        try:
            self.mask, palette = read_label_png(mask_path)
        except LabelImageError as error:
            raise BenchmarkLayoutError(str(error)) from None
        if palette is not None:
            self.palette = palette
        if self.mask.shape != self.size:
            raise BenchmarkLayoutError(f"{mask_path}: mask is {self.mask.shape[0]}x{self.mask.shape[1]} but the "
                                       f"frames of {self.path} are {self.size[0]}x{self.size[1]}")
        if not self.mask.any():
            raise BenchmarkLayoutError(f"{mask_path}: the mask holds no object (every pixel is 0)")

    def _open(self):
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise BenchmarkLayoutError(f"{self.path}: OpenCV cannot open this video file")
        return capture

    def __len__(self):
        return self.stated_frames

    @property
    def frame_names(self):
        """00000, 00001, ... (an endless iterator: the file's true length is known once it is read)."""
        return (f"{t:05d}" for t in itertools.count())

    def frames(self):
        """Iterate over the RGB frames (uint8 HxWx3), decoding one at a time."""
        capture = self._open()
        try:
            for t in itertools.count():
                ok, bgr = capture.read()
                if not ok:
                    return
                if bgr.shape[:2] != self.size:
                    raise BenchmarkLayoutError(f"{self.path}: frame {t} is {bgr.shape[0]}x{bgr.shape[1]}, the "
                                               f"first frame is {self.size[0]}x{self.size[1]}")
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()

    def given_masks(self):
        if self.mask is None:
            raise BenchmarkLayoutError(f"{self.path}: no mask given for the first frame")
        return {0: self.mask}


def open_frames(path):
    """(frame names, RGB frames, frame rate or None) of a frame folder or a video file; frames stream."""
    path = Path(path)
    if not path.exists():
        raise BenchmarkLayoutError(f"{path}: no such frame folder or video file")
    if path.is_dir():
        files = _frame_files(path)
        return [p.stem for p in files], (read_rgb(p) for p in files), None
    video = VideoFile(path)
    return video.frame_names, video.frames(), video.fps
