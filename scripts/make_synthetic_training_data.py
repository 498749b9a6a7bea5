#!/usr/bin/env python
"""Write tiny synthetic training data in the published layouts, from ``dataset.synthetic.SyntheticVideo``.

    python scripts/make_synthetic_training_data.py --output /tmp/vos_data --size 64 96

creates (under --output)
    static/BIG_small/*.jpg|png, static/ECSSD/*.jpg|png, static/FSS/<class>/*.jpg|png  (stage 0)
    BL30K/JPEGImages/<video>/*.jpg, BL30K/Annotations/<video>/*.png                   (stage 1)
    DAVIS/2017/trainval/{JPEGImages,Annotations}/480p/<video>/, ImageSets/2017/{train,val}.txt
    YouTube/train_480p/{JPEGImages,Annotations}/<video>/ (frames named 00000, 00005, ...)
so that ``train.py --static_root OUT/static --bl_root OUT/BL30K --davis_root OUT/DAVIS
--yv_root OUT/YouTube`` runs every stage on them.
"""
import argparse
from pathlib import Path

import numpy as np
from PIL import Image


from dataset.synthetic import SyntheticVideo
from util.palette import write_label_png

PARTS = ("static", "bl30k", "davis", "youtube")


def _save_jpg(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=95)


def _write_video(image_dir, mask_dir, video, frame_names):
    for t, name in enumerate(frame_names):
        rgb, labels = video.frame(t)
        _save_jpg(image_dir / f"{name}.jpg", rgb)
        mask_dir.mkdir(parents=True, exist_ok=True)
        write_label_png(mask_dir / f"{name}.png", labels)


def make_static(root, height, width, images, seed):
    """Three sets: BIG_small (flat), ECSSD (flat), FSS (one sub-folder per class)."""
    layout = {"BIG_small": [""], "ECSSD": [""], "FSS": ["class_a", "class_b"]}
    count = 0
    for set_name, classes in layout.items():
        for sub in classes:
            folder = root / set_name / sub
            for i in range(images):
                video = SyntheticVideo(seed=seed + 1000 + count, height=height, width=width,
                                       num_objects=1, length=1)
                rgb, labels = video.frame(0)
                _save_jpg(folder / f"img_{i:03d}.jpg", rgb)
                Image.fromarray(((labels > 0) * 255).astype(np.uint8)).save(folder / f"img_{i:03d}.png")
                count += 1


def make_bl30k(root, height, width, videos, frames, seed):
    for v in range(videos):
        ids = (1, 2) if v % 2 == 0 else (3, 7)   # non-consecutive ids like BL30K's palette masks
        video = SyntheticVideo(seed=seed + 2000 + v, height=height, width=width, num_objects=2,
                               length=frames, object_ids=ids)
        name = f"bl_{v:03d}"
        _write_video(root / "JPEGImages" / name, root / "Annotations" / name, video,
                     [f"{t:05d}" for t in range(frames)])


def make_davis(root, height, width, videos, frames, seed):
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


def make_youtube(root, height, width, videos, frames, seed):
    split = root / "train_480p"
    for v in range(videos):
        video = SyntheticVideo(seed=seed + 4000 + v, height=height, width=width, num_objects=2,
                               length=frames)
        name = f"yt_{v:03d}"
        _write_video(split / "JPEGImages" / name, split / "Annotations" / name, video,
                     [f"{5 * t:05d}" for t in range(frames)])


def make_synthetic_training_data(output, height=64, width=96, videos=3, frames=8, images=4, seed=0,
                                 parts=PARTS):
    output = Path(output)
    if "static" in parts:
        make_static(output / "static", height, width, images, seed)
    if "bl30k" in parts:
        make_bl30k(output / "BL30K", height, width, videos, frames, seed)
    if "davis" in parts:
        make_davis(output / "DAVIS", height, width, videos, frames, seed)
    if "youtube" in parts:
        make_youtube(output / "YouTube", height, width, videos, frames, seed)
    return output


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="folder to write the datasets into")
    parser.add_argument("--size", type=int, nargs=2, default=(64, 96), metavar=("H", "W"),
                        help="frame size (default 64 96)")
    parser.add_argument("--videos", type=int, default=3, help="videos per video dataset (default 3)")
    parser.add_argument("--frames", type=int, default=8, help="frames per video (default 8)")
    parser.add_argument("--images", type=int, default=4, help="images per static set/class (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="base seed (default 0)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="which layouts to write (default all)")
    args = parser.parse_args(argv)
    out = make_synthetic_training_data(args.output, args.size[0], args.size[1], args.videos, args.frames,
                                       args.images, args.seed, args.parts)
    print(f"synthetic training data written to {out}")


if __name__ == "__main__":
    main()
