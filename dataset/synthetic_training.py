"""Tiny seeded training data in the published training layouts, from ``dataset.synthetic.SyntheticVideo``.

    write_synthetic_training_data("/tmp/vos_data", height=64, width=96)

creates (under the output folder)
    static/BIG_small/*.jpg|png, static/ECSSD/*.jpg|png, static/FSS/<class>/*.jpg|png  (stage 0)
    BL30K/JPEGImages/<video>/*.jpg, BL30K/Annotations/<video>/*.png                   (stage 1)
    DAVIS/2017/trainval/{JPEGImages,Annotations}/480p/<video>/, ImageSets/2017/{train,val}.txt
    YouTube/train_480p/{JPEGImages,Annotations}/<video>/ (frames named 00000, 00005, ...)
so that ``train.py --static_root OUT/static --bl_root OUT/BL30K --davis_root OUT/DAVIS
--yv_root OUT/YouTube`` runs every stage on them. The static images hold one object each
(``dataset.synthetic_static.write_static_images``); BL30K videos carry the non-consecutive ids 3 and 7
in every second video; the last DAVIS video is listed in val.txt only, so training must skip it.
"""
from pathlib import Path

from dataset.synthetic import SyntheticVideo, _write_jpeg
from dataset.synthetic_static import write_static_images
from util.palette import write_label_png

__all__ = ["PARTS", "STATIC_SETS", "write_synthetic_training_data"]

PARTS = ("static", "bl30k", "davis", "youtube")
# stage-0 sets as in STCN's static folder: BIG (seen 5x as often), ECSSD, FSS-1000 (one folder per class)
STATIC_SETS = ("BIG_small", "ECSSD", "FSS/class_a", "FSS/class_b")


def write_synthetic_training_data(output, height=64, width=96, videos=3, frames=8, images=4, seed=0,
                                  parts=PARTS):
    """Write the chosen ``parts`` under ``output`` (see the module docstring); returns ``Path(output)``.
    ``images``: image/mask pairs per static set or FSS class; ``videos``: videos per video dataset
    (DAVIS gets one more, for val.txt)."""
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    output = Path(output)
    if "static" in parts:
        write_static_images([output / "static" / name for name in STATIC_SETS], seed=seed, count=images,
                            height=height, width=width, max_objects=1)
    if "bl30k" in parts:
        _write_bl30k(output / "BL30K", height, width, videos, frames, seed)
    if "davis" in parts:
        _write_davis(output / "DAVIS", height, width, videos, frames, seed)
    if "youtube" in parts:
        _write_youtube(output / "YouTube", height, width, videos, frames, seed)
    return output


def _write_video(image_dir, mask_dir, video, frame_names):
    for t, name in enumerate(frame_names):
        rgb, labels = video.frame(t)
        _write_jpeg(image_dir / f"{name}.jpg", rgb)
        write_label_png(mask_dir / f"{name}.png", labels)


def _write_bl30k(root, height, width, videos, frames, seed):
    for v in range(videos):
        ids = (1, 2) if v % 2 == 0 else (3, 7)   # non-consecutive ids like BL30K's palette masks
        video = SyntheticVideo(seed=seed + 2000 + v, height=height, width=width, num_objects=2,
                               length=frames, object_ids=ids)
        name = f"bl_{v:03d}"
        _write_video(root / "JPEGImages" / name, root / "Annotations" / name, video,
                     [f"{t:05d}" for t in range(frames)])


def _write_davis(root, height, width, videos, frames, seed):
    trainval = root / "2017" / "trainval"
    names = [f"davis_{v:03d}" for v in range(videos + 1)]
    for v, name in enumerate(names):
        video = SyntheticVideo(seed=seed + 3000 + v, height=height, width=width,
                               num_objects=1 + v % 2, length=frames)
        _write_video(trainval / "JPEGImages" / "480p" / name, trainval / "Annotations" / "480p" / name,
                     video, [f"{t:05d}" for t in range(frames)])
    sets = trainval / "ImageSets" / "2017"
    sets.mkdir(parents=True, exist_ok=True)
    (sets / "train.txt").write_text("\n".join(names[:-1]) + "\n")
    (sets / "val.txt").write_text(names[-1] + "\n")   # a validation video that must not be trained on


def _write_youtube(root, height, width, videos, frames, seed):
    split = root / "train_480p"
    for v in range(videos):
        video = SyntheticVideo(seed=seed + 4000 + v, height=height, width=width, num_objects=2,
                               length=frames)
        name = f"yt_{v:03d}"
        _write_video(split / "JPEGImages" / name, split / "Annotations" / name, video,
                     [f"{5 * t:05d}" for t in range(frames)])
