"""Resize YouTubeVOS training videos to 480p (shorter side) once, offline, as the published code does.

    python scripts/resize_youtube.py --source ../YouTube/train --target ../YouTube/train_480p

Frames bicubic, annotations (palette PNGs) nearest neighbour, same names; train.py reads
``train_480p``. ``scripts/download_datasets.py`` runs this after downloading the training set. An
interrupted run resumes; a complete target is left as it is.
"""
import argparse
import sys
from pathlib import Path

from dataset.youtube_resize import resize_youtube_train


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="../YouTube/train", help="folder holding JPEGImages/ and Annotations/")
    parser.add_argument("--target", default="../YouTube/train_480p", help="output folder")
    args = parser.parse_args(argv)
    if not (Path(args.source) / "JPEGImages").is_dir():
        sys.exit(f"error: --source {args.source} has no JPEGImages/ folder")
    count = resize_youtube_train(args.source, args.target)
    print(f"{args.target}: {count} videos at 480p")


if __name__ == "__main__":
    main()
