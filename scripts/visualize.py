"""Watch a result folder: its masks drawn over the frames, as an MP4 (and optionally a GIF preview).

    python scripts/visualize.py --frames ../DAVIS/2017/trainval/JPEGImages/480p/bike-packing \
        --masks output/d17_val/bike-packing --output bike-packing.mp4 --gif bike-packing.gif
    python scripts/visualize.py --frames clip.mp4 --masks output/clip/clip --output clip_overlay.mp4

--frames is a folder of frames (<frame>.jpg|png) or a video file (frames named 00000, 00001, ...);
--masks holds <frame>.png label maps (indexed, grayscale, or RGB in the DAVIS colours). Each object is
blended over its frame in its palette colour, outlined, and its id is written at its centroid.
Frames without a mask are left out (e.g. the unannotated frames of YouTubeVOS results).
"""
import argparse
import sys
from pathlib import Path

from dataset.user_videos import open_frames
from evaluation.overlay import DEFAULT_FPS, write_overlay


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", required=True, help="folder of frames, or a video file")
    parser.add_argument("--masks", required=True, help="folder of <frame>.png masks (a result folder)")
    parser.add_argument("--output", required=True, help="the MP4 file to write")
    parser.add_argument("--gif", default=None, help="also write a short GIF preview to this file")
    parser.add_argument("--fps", type=float, default=None,
                        help=f"frame rate (default: the video file's own, {DEFAULT_FPS} for frame folders)")
    return parser


def run(args):
    if Path(args.output).suffix.lower() != ".mp4":
        raise ValueError(f"--output {args.output}: give a .mp4 file name")
    if args.fps is not None and args.fps <= 0:
        raise ValueError(f"--fps must be positive, got {args.fps}")
    names, frames, own_fps = open_frames(args.frames)
    fps = args.fps or own_fps or DEFAULT_FPS
    count = write_overlay(names, frames, args.masks, args.output, fps=fps, gif_path=args.gif)
    print(f"Wrote {args.output} ({count} frames at {fps:g} frames/s)" + (f" and {args.gif}" if args.gif else ""))


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except ValueError as error:  # dataset.BenchmarkLayoutError, bad masks: the message names the file
        sys.exit(f"error: {error}")
    return 0


if __name__ == "__main__":
    main()
