"""Video training datasets: BL30K (stage 1) and DAVIS 2017 train x5 + YouTubeVOS train (stages 2, 3).

Every video folder holds JPEG frames and, in the matching annotation folder, an indexed (palette)
PNG label map per frame with the same name. Published layouts accepted:
- BL30K:       ``BL30K/JPEGImages/<video>/*.jpg`` and ``BL30K/Annotations/<video>/*.png``
- DAVIS 2017:  ``DAVIS/2017/trainval/{JPEGImages,Annotations}/480p/<video>/`` and
               ``ImageSets/2017/train.txt`` (the training videos)
- YouTubeVOS:  ``YouTube/train_480p/{JPEGImages,Annotations}/<video>/`` (or ``train/``); its stored
               frames are every 5th frame, so the maximum skip is divided by 5.

A sample (STCN appendix F.3.2/F.3.3, following MiVOS): T frames in temporal order whose gaps
respect the curriculum's maximum skip (reversed with probability 1/2; ``frame_sampler`` replaces
this rule, e.g. RDE's forward walk in ``dataset/rde_frames.py``); the same horizontal flip,
random resized crop (scale 0.36-1, or 0.25-1 for BL30K; ratio 0.75-1.25), colour jitter
(0.1, 0.03, 0.03) and grayscale (p 0.05) for all frames; then per frame colour jitter (0.01, 0.01,
0.01) and a random affine (rotation ±15°, shear ±10°). Up to 2 objects present in the first frame
are picked as targets (BL30K ignores objects under 100 pixels there); a clip without any is redrawn
(5 tries).
"""

import cv2
import numpy as np

from dataset.augment import (color_jitter, hflip, random_affine_matrix, random_grayscale, random_resized_crop_box,
                             warp_affine)
from dataset.clip import make_clip, target_labels, with_extras
from dataset.folders import DatasetFolderError, list_folders, list_frames, read_rgb, require_folder
from dataset.sampler import sample_rng
from util.palette import LabelImageError, read_label_png

__all__ = ["VOSTrainDataset", "ConcatSamples", "sample_frame_indices", "bl30k_dataset",
           "davis_train_dataset", "youtube_train_dataset", "main_training_dataset"]

VOID_ID = 255
DEFAULT_MAX_SKIP = 5


def sample_frame_indices(rng, length, num_frames, max_skip):
    """``num_frames`` distinct sorted frame indices: a random anchor, then each next one drawn
    uniformly among unused frames within ``max_skip`` of an already chosen frame; the order is
    reversed with probability 1/2."""
    if length < num_frames:
        raise ValueError(f"a video of {length} frames cannot give {num_frames} distinct frames")
    max_skip = max(1, min(int(max_skip), length))
    chosen = [int(rng.integers(length))]
    while len(chosen) < num_frames:
        candidates = sorted({i for c in chosen for i in range(max(0, c - max_skip), min(length, c + max_skip + 1))}
                            - set(chosen))
        chosen.append(int(candidates[rng.integers(len(candidates))]))
    chosen.sort()
    if rng.random() < 0.5:
        chosen.reverse()
    return chosen


class VOSTrainDataset:
    """Clips of ``num_frames`` frames from the videos of ``image_root`` / ``mask_root``.

    ``frame_sampler(rng, length, num_frames, max_skip) -> indices`` picks a clip's frames (default
    STCN's ``sample_frame_indices``); ``None`` also means the default. ``sample_extras``: see
    ``dataset.clip.with_extras``.
    """

    def __init__(self, image_root, mask_root, *, size=384, num_frames=3, max_objects=2,
                 skip_divisor=1, repeat=1, crop_scale=(0.36, 1.0), min_object_pixels=1,
                 videos=None, name="videos", tries=5, frame_sampler=None, sample_extras=None):
        self.sample_extras = sample_extras
        layout = "one sub-folder of frames per video"
        self.image_root = require_folder(image_root, f"{name} image", layout)
        self.mask_root = require_folder(mask_root, f"{name} annotation", layout + " (PNG label maps)")
        self.size = size
        self.num_frames = num_frames
        self.max_objects = max_objects
        self.skip_divisor = skip_divisor
        self.repeat = int(repeat)
        self.crop_scale = tuple(crop_scale)
        self.min_object_pixels = min_object_pixels
        self.tries = tries
        self.frame_sampler = frame_sampler or sample_frame_indices
        self.videos = self._scan(videos, name)

    def _scan(self, wanted, name):
        names = list_folders(self.image_root)
        if wanted is not None:
            missing = sorted(set(wanted) - set(names))
            if missing:
                raise DatasetFolderError(f"{name}: videos {missing[:5]} listed for training are not in "
                                         f"{self.image_root}")
            names = [n for n in names if n in set(wanted)]
        videos = []
        for video in names:
            mask_dir = self.mask_root / video
            if not mask_dir.is_dir():
                continue
            frames = [f for f in list_frames(self.image_root / video, (".jpg", ".jpeg", ".png"))
                      if (mask_dir / (f.stem + ".png")).exists()]
            if len(frames) >= self.num_frames:
                videos.append((video, frames))
        if not videos:
            raise DatasetFolderError(
                f"{name}: no video in {self.image_root} has {self.num_frames} or more frames with a "
                f"label PNG of the same name in {self.mask_root}/<video>/")
        return videos

    def __len__(self):
        return len(self.videos) * self.repeat

    def _load(self, video, frame_path):
        image = read_rgb(frame_path)
        mask_path = self.mask_root / video / (frame_path.stem + ".png")
        try:
            labels, _ = read_label_png(mask_path)
        except LabelImageError as error:
            raise DatasetFolderError(str(error)) from None
        if labels.shape != image.shape[:2]:
            raise DatasetFolderError(f"mask {mask_path} and frame {frame_path} differ in size")
        return image, labels

    def _augment(self, images, labels, rng):
        height, width = labels[0].shape
        flip = rng.random() < 0.5
        y, x, h, w = random_resized_crop_box(rng, (height, width), self.crop_scale, (0.75, 1.25))
        jitter_seed, gray_seed = (int(s) for s in rng.integers(2 ** 62, size=2))
        out_images, out_labels = [], []
        for image, label in zip(images, labels):
            if image.shape[:2] != (height, width):
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
                label = cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
            image, label = image[y:y + h, x:x + w], label[y:y + h, x:x + w]
            if flip:
                image, (label,) = hflip(image, [label])
            shrink = cv2.INTER_AREA if h > self.size else cv2.INTER_LINEAR
            image = cv2.resize(np.ascontiguousarray(image), (self.size, self.size), interpolation=shrink)
            label = cv2.resize(np.ascontiguousarray(label), (self.size, self.size),
                               interpolation=cv2.INTER_NEAREST_EXACT)
            # same jitter / grayscale for every frame: generators with a shared seed
            image = color_jitter(image, np.random.default_rng(jitter_seed), 0.1, 0.03, 0.03)
            image = random_grayscale(image, np.random.default_rng(gray_seed), p=0.05)
            image = color_jitter(image, rng, 0.01, 0.01, 0.01)
            matrix = random_affine_matrix(rng, label.shape, degrees=15, shear=10)
            image, (label,) = warp_affine(image, [label], matrix)
            out_images.append(image)
            out_labels.append(label)
        return out_images, out_labels

    def _pick_objects(self, first_labels, rng):
        ids, counts = np.unique(first_labels, return_counts=True)
        present = [int(i) for i, c in zip(ids, counts)
                   if i != 0 and i != VOID_ID and c >= self.min_object_pixels]
        if len(present) > self.max_objects:
            present = [int(i) for i in rng.choice(present, self.max_objects, replace=False)]
        return present

    def __getitem__(self, key):
        rng = sample_rng(key)
        index = key.index if hasattr(key, "index") else int(key)
        skip = getattr(key, "max_skip", None) or DEFAULT_MAX_SKIP
        skip = max(1, skip // self.skip_divisor)
        video, frames = self.videos[index % len(self.videos)]
        for _ in range(self.tries):
            chosen = self.frame_sampler(rng, len(frames), self.num_frames, skip)
            images, labels = zip(*(self._load(video, frames[i]) for i in chosen))
            images, labels = self._augment(images, labels, rng)
            objects = self._pick_objects(labels[0], rng)
            if objects:
                break
        targets = [target_labels(label, objects) for label in labels]
        sample = make_clip(images, targets, len(objects), self.max_objects, video, chosen)
        return with_extras(sample, rng, self.sample_extras)


class ConcatSamples:
    """Several datasets as one index space (``SampleKey`` indices are re-based per dataset)."""

    def __init__(self, datasets):
        self.datasets = list(datasets)
        self.offsets = np.cumsum([0] + [len(d) for d in self.datasets])

    def __len__(self):
        return int(self.offsets[-1])

    def __getitem__(self, key):
        index = key.index if hasattr(key, "index") else int(key)
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} outside 0..{len(self) - 1}")
        part = int(np.searchsorted(self.offsets, index, side="right")) - 1
        local = index - int(self.offsets[part])
        return self.datasets[part][key._replace(index=local) if hasattr(key, "_replace") else local]


def bl30k_dataset(root, **kwargs):
    """BL30K: ``root/JPEGImages/<video>``, ``root/Annotations/<video>``; crop scale 0.25-1,
    objects under 100 pixels in the first frame ignored."""
    root = require_folder(root, "BL30K", "JPEGImages/ and Annotations/ with one folder per video")
    kwargs.setdefault("crop_scale", (0.25, 1.0))
    kwargs.setdefault("min_object_pixels", 100)
    return VOSTrainDataset(root / "JPEGImages", root / "Annotations", name="BL30K", **kwargs)


def _davis_trainval(root):
    root = require_folder(root, "DAVIS", "DAVIS/2017/trainval/{JPEGImages,Annotations}/480p")
    for candidate in (root, root / "trainval", root / "2017" / "trainval"):
        if (candidate / "JPEGImages" / "480p").is_dir():
            return candidate
    raise DatasetFolderError(f"DAVIS folder {root} has no JPEGImages/480p (looked in {root}, "
                             f"{root / 'trainval'}, {root / '2017' / 'trainval'})")


def davis_train_dataset(root, repeat=5, **kwargs):
    """DAVIS 2017 training videos (``ImageSets/2017/train.txt``), repeated 5x per epoch."""
    trainval = _davis_trainval(root)
    listing = trainval / "ImageSets" / "2017" / "train.txt"
    if not listing.is_file():
        raise DatasetFolderError(f"DAVIS folder {trainval} has no {listing.relative_to(trainval)}; it names "
                                 f"the training videos (validation videos must not be trained on)")
    videos = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    return VOSTrainDataset(trainval / "JPEGImages" / "480p", trainval / "Annotations" / "480p",
                           repeat=repeat, videos=videos, name="DAVIS 2017 train", **kwargs)


def youtube_train_dataset(root, **kwargs):
    """YouTubeVOS train (``train_480p`` preferred, else ``train``); stored frames are 5 apart."""
    root = require_folder(root, "YouTubeVOS", "train_480p/{JPEGImages,Annotations}/<video>")
    for candidate in (root / "train_480p", root / "train", root):
        if (candidate / "JPEGImages").is_dir() and (candidate / "Annotations").is_dir():
            kwargs.setdefault("skip_divisor", 5)
            return VOSTrainDataset(candidate / "JPEGImages", candidate / "Annotations",
                                   name="YouTubeVOS train", **kwargs)
    raise DatasetFolderError(f"YouTubeVOS folder {root} has no train_480p/ or train/ with JPEGImages/ "
                             f"and Annotations/")


def main_training_dataset(davis_root, youtube_root, davis_repeat=5, **kwargs):
    """Main training: DAVIS 2017 train (x5) followed by YouTubeVOS train."""
    return ConcatSamples([davis_train_dataset(davis_root, repeat=davis_repeat, **kwargs),
                          youtube_train_dataset(youtube_root, **kwargs)])
