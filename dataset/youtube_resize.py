"""The published 480p YouTubeVOS training resize, done offline once (``train`` -> ``train_480p``).

Every video of ``train/JPEGImages`` and ``train/Annotations`` is scaled so that its shorter side is
480 (factor 480 / min(w, h), new size int(w f) x int(h f)): frames bicubic, annotations as palette
images with nearest neighbour; same file names. Each video is written to a hidden folder and renamed
when complete, and the whole output appears under its name only when every video is done, so an
interrupted run resumes where it stopped.
"""
import os
import shutil
from pathlib import Path

from PIL import Image
from tqdm import tqdm

SHORT_SIDE = 480   # the published training resolution of YouTubeVOS (shorter side)


def resized_size(width, height, short_side=SHORT_SIDE):
    factor = short_side / min(width, height)
    return int(width * factor), int(height * factor)


def _resize_folder(source, target, resample, as_palette):
    tmp = target.with_name("." + target.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for path in sorted(source.iterdir()):
        if not path.is_file():
            continue
        with Image.open(path) as image:
            if as_palette and image.mode != "P":
                image = image.convert("P")
            image.resize(resized_size(*image.size), resample).save(tmp / path.name)
    os.replace(tmp, target)


def resize_youtube_train(source, target, progress=True):
    """Resize ``source`` (holding JPEGImages/ and Annotations/) into ``target``; returns the video count."""
    source, target = Path(source), Path(target)
    if target.is_dir():
        return len(list((target / "JPEGImages").iterdir()))
    staging = target.with_name("." + target.name + ".partial")
    videos = sorted(p.name for p in (source / "JPEGImages").iterdir() if p.is_dir())
    (staging / "JPEGImages").mkdir(parents=True, exist_ok=True)
    (staging / "Annotations").mkdir(parents=True, exist_ok=True)
    for video in tqdm(videos, desc=f"resize {source.name} -> {target.name}", unit="video", disable=not progress):
        for kind, resample, as_palette in (("JPEGImages", Image.BICUBIC, False),
                                           ("Annotations", Image.NEAREST, True)):
            out = staging / kind / video
            if not out.is_dir() and (source / kind / video).is_dir():
                out.parent.mkdir(parents=True, exist_ok=True)
                _resize_folder(source / kind / video, out, resample, as_palette)
    os.replace(staging, target)
    return len(videos)
