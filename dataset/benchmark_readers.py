"""Streaming readers of DAVIS and YouTubeVOS folders that check the layout with errors naming the file.

Frames are read one at a time (``video.frames()``), so a long video never sits in memory.

DAVIS (``DavisReader(root, split, year)``): ``root`` is the folder holding ``trainval/`` and ``test-dev/``
(the published ``--davis_path``, e.g. ``../DAVIS/2017``) or one of those two folders itself::

    trainval/JPEGImages/480p/<video>/00000.jpg     trainval/Annotations/480p/<video>/00000.png
    trainval/ImageSets/2016|2017/train.txt|val.txt  test-dev/ImageSets/2017/test-dev.txt

YouTubeVOS (``YouTubeReader(root, split)``): ``root`` holds ``<split>/JPEGImages`` (every 5th frame),
``<split>/Annotations`` (only the frames where objects are first given), ``<split>/meta.json``, and
optionally every frame in ``all_frames/<split>_all_frames/JPEGImages`` or
``<split>_all_frames/JPEGImages``; when present those are the frames processed, and outputs are
required only for the sparse frames.

Hidden files and folders (``._*``, ``.DS_Store``) are ignored. Frames are decoded completely: a
truncated or corrupt frame or annotation is an error naming the file. ``meta.json`` is checked for
its structure (``videos`` -> ``objects`` -> integer object ids -> ``frames`` lists of frame names).
``frame_numbering_gap(video)`` and ``YouTubeReader.videos_missing_from_meta()`` find the gaps the eval
scripts report.
"""
import json
from pathlib import Path

import numpy as np
from PIL import Image

from dataset.folders import list_folders, list_frames
from util.image_files import ImageFileError
from util.image_files import read_rgb as read_image
from util.palette import LabelImageError, davis_palette, read_label_png

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
DAVIS_SPLITS = {  # split name -> (folder, image set file name)
    "train": ("trainval", "train"),
    "val": ("trainval", "val"),
    "testdev": ("test-dev", "test-dev"),
    "test-dev": ("test-dev", "test-dev"),
}


class BenchmarkLayoutError(ValueError):
    """A benchmark folder that does not have the published layout; the message names the path."""


def read_rgb(path):
    """HxWx3 uint8 RGB image decoded completely, or BenchmarkLayoutError naming the file."""
    try:
        return read_image(path)
    except ImageFileError as error:
        raise BenchmarkLayoutError(f"frame {error}") from None


def image_size(path):
    """(height, width) from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except FileNotFoundError:
        raise BenchmarkLayoutError(f"{path}: file is missing") from None
    except Exception as error:
        raise BenchmarkLayoutError(f"{path}: not a readable image ({error})") from None
    return height, width


def _frame_files(folder):
    if not folder.is_dir():
        raise BenchmarkLayoutError(f"{folder}: frame folder is missing")
    files = list_frames(folder, FRAME_SUFFIXES)
    if not files:
        raise BenchmarkLayoutError(f"{folder}: holds no frames (.jpg)")
    return files


def _annotation_files(folder):
    """{frame name: PNG path} of the (non-hidden) annotations in ``folder`` (empty when it is missing)."""
    return {p.stem: p for p in list_frames(folder, (".png",))} if folder.is_dir() else {}


def frame_numbering_gap(video):
    """A sentence naming the first gap in a video's numbered frames (00000, 00001, ...), else None.

    Frames named by anything other than integers are not checked; YouTubeVOS's sparse every-5th
    folders are not meant to be consecutive and are not checked either."""
    try:
        numbers = [int(name) for name in video.frame_names]
    except ValueError:
        return None
    for previous, current, name in zip(numbers, numbers[1:], video.frame_names[1:]):
        if current != previous + 1:
            return (f"video {video.name}: frame numbering jumps from {video.frame_names[numbers.index(previous)]} "
                    f"to {name} ({current - previous - 1} frame(s) missing)")
    return None


def _read_labels(path, palette=None):
    try:
        return read_label_png(path, palette)
    except LabelImageError as error:
        raise BenchmarkLayoutError(str(error)) from None


class Video:
    """A video of a benchmark: frame files, given annotations, and lazy readers."""

    def __init__(self, name, frame_paths, annotation_paths, required_names=None):
        self.name = name
        self.frame_paths = list(frame_paths)
        self.frame_names = [p.stem for p in self.frame_paths]
        self.annotation_paths = dict(annotation_paths)  # frame name -> PNG path
        self.required_names = set(self.frame_names if required_names is None else required_names)
        self._size = None
        self._palette = None

    def __len__(self):
        return len(self.frame_paths)

    @property
    def size(self):
        """(height, width) of the first frame; every frame and annotation must match it."""
        if self._size is None:
            self._size = image_size(self.frame_paths[0])
        return self._size

    @property
    def palette(self):
        """(256, 3) palette of the first given annotation (DAVIS palette when it has none)."""
        if self._palette is None:
            first = self.annotation_paths[min(self.annotation_paths, key=self.frame_names.index)]
            _, palette = _read_labels(first)
            self._palette = davis_palette() if palette is None else palette
        return self._palette

    def frames(self):
        """Iterate over the RGB frames (uint8 HxWx3), checking each one's size."""
        for path in self.frame_paths:
            rgb = read_rgb(path)
            if rgb.shape[:2] != self.size:
                raise BenchmarkLayoutError(
                    f"{path}: frame is {rgb.shape[0]}x{rgb.shape[1]}, the video's first frame is "
                    f"{self.size[0]}x{self.size[1]}")
            yield rgb

    def annotation(self, frame_name):
        """Label map (uint8 HxW) given for ``frame_name``, checked against the frame size."""
        path = self.annotation_paths.get(frame_name)
        if path is None:
            raise BenchmarkLayoutError(f"video {self.name}: no annotation for frame {frame_name}")
        labels, _ = _read_labels(path, self.palette)  # RGB PNGs map onto the video's palette
        if labels.shape != self.size:
            raise BenchmarkLayoutError(
                f"{path}: annotation is {labels.shape[0]}x{labels.shape[1]} but its frame "
                f"{self.frame_paths[self.frame_names.index(frame_name)]} is {self.size[0]}x{self.size[1]}")
        return labels


def _check_annotation_sizes(video):
    """Every annotation has its frame's size (read from the file headers only)."""
    frame_of = dict(zip(video.frame_names, video.frame_paths))
    for name, path in video.annotation_paths.items():
        size = image_size(path)
        if size != video.size:
            raise BenchmarkLayoutError(
                f"{path}: annotation is {size[0]}x{size[1]} but the frame {frame_of[name]} of video "
                f"{video.name} is {video.size[0]}x{video.size[1]}")


class DavisReader:
    """Videos of a DAVIS split, in the order of its ImageSets file."""

    def __init__(self, root, split="val", year=2017, resolution="480p"):
        if split not in DAVIS_SPLITS:
            raise ValueError(f"unknown DAVIS split {split!r}; choose from {sorted(DAVIS_SPLITS)}")
        root = Path(root)
        folder_name, list_name = DAVIS_SPLITS[split]
        self.folder = root / folder_name if (root / folder_name).is_dir() else root
        self.year = int(year)
        self.split = split
        self.resolution = resolution
        self.image_set = self.folder / "ImageSets" / str(self.year) / f"{list_name}.txt"
        if not self.image_set.is_file():
            raise BenchmarkLayoutError(
                f"{self.image_set}: image set file is missing; --davis_path should hold "
                f"{folder_name}/ImageSets/{self.year}/{list_name}.txt")
        self.sequences = [line.strip() for line in self.image_set.read_text().splitlines() if line.strip()]
        if not self.sequences:
            raise BenchmarkLayoutError(f"{self.image_set}: lists no videos")

    @property
    def annotation_root(self):
        return self.folder / "Annotations" / self.resolution

    def video(self, name):
        """The video ``name``; checks that its frames and first annotation exist and agree in size."""
        frame_dir = self.folder / "JPEGImages" / self.resolution / name
        if not frame_dir.is_dir():
            raise BenchmarkLayoutError(f"{frame_dir}: video {name} is listed in {self.image_set} but its "
                                       f"frame folder is missing")
        frames = _frame_files(frame_dir)
        annotation_dir = self.annotation_root / name
        annotations = _annotation_files(annotation_dir)
        first = frames[0].stem
        if first not in annotations:
            raise BenchmarkLayoutError(f"{annotation_dir / (first + '.png')}: first-frame annotation of "
                                       f"video {name} is missing")
        names = {p.stem for p in frames}
        stray = sorted(set(annotations) - names)
        if stray:
            raise BenchmarkLayoutError(f"{annotations[stray[0]]}: annotation without a frame in {frame_dir}")
        video = Video(name, frames, annotations)
        _check_annotation_sizes(video)
        return video

    def has_ground_truth(self, video):
        """Whether every frame of ``video`` is annotated (val/train; test-dev gives frame 0 only)."""
        return len(video.annotation_paths) == len(video.frame_paths)

    def missing_ground_truth(self, video):
        """The annotation path of the first frame of ``video`` that has none, or None."""
        missing = [name for name in video.frame_names if name not in video.annotation_paths]
        return self.annotation_root / video.name / f"{missing[0]}.png" if missing else None


def read_youtube_meta(path):
    """A YouTubeVOS meta.json as ``{video: {object id (int): {"category": ..., "frames": [names]}}}``;
    a missing file or a wrong structure is a BenchmarkLayoutError naming the file (and the video)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BenchmarkLayoutError(f"{path}: meta.json is missing") from None
    except (OSError, ValueError) as error:
        raise BenchmarkLayoutError(f"{path}: not a readable JSON file ({error})") from None
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, dict):
        raise BenchmarkLayoutError(f'{path}: not a YouTubeVOS meta file: "videos" must map video names to '
                                   f'their entries, found {type(videos).__name__}')
    return {name: _meta_objects(path, name, entry) for name, entry in videos.items()}


def _meta_objects(path, video, entry):
    where = f"{path}: video {video}"
    objects = entry.get("objects", {}) if isinstance(entry, dict) else None
    if not isinstance(objects, dict):
        raise BenchmarkLayoutError(f'{where}: "objects" must map object ids to {{"category", "frames"}}, '
                                   f'found {type(objects).__name__}')
    parsed = {}
    for key, info in objects.items():
        try:
            obj_id = int(key)
        except (TypeError, ValueError):
            raise BenchmarkLayoutError(f"{where}: object id {key!r} is not an integer") from None
        if not 1 <= obj_id <= 255:
            raise BenchmarkLayoutError(f"{where}: object id {obj_id} is outside 1..255 (PNG label ids)")
        frames = info.get("frames", []) if isinstance(info, dict) else None
        if not isinstance(frames, list) or not all(isinstance(frame, str) for frame in frames):
            raise BenchmarkLayoutError(f'{where} object {key}: "frames" must be a list of frame names')
        parsed[obj_id] = {"category": info.get("category"), "frames": list(frames)}
    return parsed


def _all_frames_folder(root, split):
    for candidate in (root / "all_frames" / f"{split}_all_frames" / "JPEGImages",
                      root / f"{split}_all_frames" / "JPEGImages"):
        if candidate.is_dir():
            return candidate
    return None


class YouTubeReader:
    """Videos of a YouTubeVOS split (``valid``, ``test`` or ``train``), sorted by name."""

    def __init__(self, root, split="valid", use_all_frames=True):
        root = Path(root)
        self.folder = root / split
        self.split = split
        if not self.folder.is_dir():
            raise BenchmarkLayoutError(f"{self.folder}: split folder is missing; --yv_path should hold {split}/")
        self.meta_path = self.folder / "meta.json"
        self.meta = read_youtube_meta(self.meta_path)
        self.sparse_root = self.folder / "JPEGImages"
        self.all_frames_root = _all_frames_folder(root, split) if use_all_frames else None
        self.videos = sorted(self.meta)

    def videos_missing_from_meta(self):
        """Video folders of ``<split>/JPEGImages`` that meta.json does not list (not segmented, not zipped)."""
        on_disk = list_folders(self.sparse_root) if self.sparse_root.is_dir() else []
        return [name for name in on_disk if name not in self.meta]

    def video(self, name):
        """The video ``name``: every frame to process, sparse frames to output, given annotations."""
        sparse = _frame_files(self.sparse_root / name)
        sparse_names = [p.stem for p in sparse]
        frames = _frame_files(self.all_frames_root / name) if self.all_frames_root else sparse
        frame_names = {p.stem for p in frames}
        absent = [n for n in sparse_names if n not in frame_names]
        if absent:
            raise BenchmarkLayoutError(f"{self.all_frames_root / name}: frame {absent[0]} of "
                                       f"{self.sparse_root / name} is missing")
        annotation_dir = self.folder / "Annotations" / name
        annotations = _annotation_files(annotation_dir)
        if not annotations:
            raise BenchmarkLayoutError(f"{annotation_dir}: video {name} has no annotation PNGs")
        for stem, path in annotations.items():
            if stem not in frame_names:
                raise BenchmarkLayoutError(f"{path}: annotation without a frame of video {name}")
        objects = self.meta[name]
        first_given = {}
        for obj_id, info in objects.items():
            listed = info["frames"]
            for frame in listed:
                if frame not in frame_names:
                    raise BenchmarkLayoutError(
                        f"{self.meta_path}: video {name} object {obj_id} names frame {frame}, which is "
                        f"not in {self.sparse_root / name}")
            if listed:
                first_given[obj_id] = listed[0]
        video = Video(name, frames, annotations, required_names=sparse_names)
        _check_annotation_sizes(video)
        video.first_given = first_given  # object id -> frame name of its first mask (from meta.json)
        video.categories = {obj_id: info["category"] for obj_id, info in objects.items()}
        for obj_id, frame in first_given.items():
            if frame not in annotations:
                raise BenchmarkLayoutError(
                    f"{annotation_dir / (frame + '.png')}: meta.json gives object {obj_id} of video "
                    f"{name} first at frame {frame} but that annotation is missing")
        return video

    @staticmethod
    def given_masks(video):
        """{frame index: label map} of each object where meta.json first gives it (``first_appearance_masks``)."""
        return first_appearance_masks(video)


def first_appearance_masks(video):
    """{frame index: label map} holding each object only in the frame where it is first given.

    Objects come from ``video.first_given`` (YouTubeVOS: meta.json) when set, else from the first
    annotation PNG that holds them (a label seen again in a later annotation is not given again).
    """
    index_of = {n: i for i, n in enumerate(video.frame_names)}
    first = dict(getattr(video, "first_given", {}))
    masks = {}
    for frame in sorted(video.annotation_paths, key=index_of.get):
        labels = video.annotation(frame)
        present = [int(i) for i in np.unique(labels) if i != 0]
        for obj in present:
            first.setdefault(obj, frame)
        new = [obj for obj in present if first[obj] == frame]
        if new:
            masks[index_of[frame]] = np.where(np.isin(labels, new), labels, 0).astype(np.uint8)
    missing = [obj for obj, frame in first.items() if index_of[frame] not in masks
               or obj not in masks[index_of[frame]]]
    if missing:
        obj = missing[0]
        raise BenchmarkLayoutError(
            f"{video.annotation_paths[first[obj]]}: object {obj} of video {video.name} should be given "
            f"here (meta.json) but the annotation does not hold it")
    return masks
