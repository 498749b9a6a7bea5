"""Write a tiny YouTubeVOS-layout dataset of synthetic textured shapes (seeded, fast).

    python scripts/make_synthetic_youtube.py --output data/synthetic_youtube --height 240 --width 427
    python eval_youtube.py --model saves/stcn.pth --yv_path data/synthetic_youtube --output out/

Layout: train/{JPEGImages,Annotations,meta.json} at every 5th frame; valid/JPEGImages (every 5th
frame), valid/Annotations (only where objects are first given), valid/meta.json;
all_frames/valid_all_frames/JPEGImages (every frame); valid_gt/Annotations (full ground truth, only in
synthetic sets, for scripts/evaluate.py --benchmark youtube). Valid objects have non-consecutive ids
and may enter late; triangles never occur in train, so they are the "unseen" category.
"""
import argparse
import sys
import time


from dataset.synthetic import write_synthetic_youtube


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="dataset root to create (holds train/ valid/ all_frames/)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same set")
    parser.add_argument("--train", type=int, default=2, help="number of train videos")
    parser.add_argument("--valid", type=int, default=2, help="number of valid videos")
    parser.add_argument("--frames", type=int, default=16,
                        help="frames per video (every 5th is annotated / in JPEGImages)")
    parser.add_argument("--height", type=int, default=480, help="frame height")
    parser.add_argument("--width", type=int, default=854, help="frame width")
    parser.add_argument("--max_objects", type=int, default=3, help="objects per video: 1..max_objects")
    parser.add_argument("--edge_crossers", type=int, default=None,
                        help="objects per video (the last ones) that leave the view across the left/right edge "
                             "and re-enter from the other side (default: the last object when there are 2+)")
    parser.add_argument("--deform", type=float, default=0.0,
                        help="non-rigid outline wobble, fraction of the radius in [0, 0.5) (default 0: rigid)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --output")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    try:
        names = write_synthetic_youtube(args.output, seed=args.seed, num_train=args.train, num_valid=args.valid,
                                        length=args.frames, height=args.height, width=args.width,
                                        max_objects=args.max_objects, overwrite=args.overwrite,
                                        edge_crossers=args.edge_crossers, deform=args.deform)
    except (FileExistsError, ValueError) as error:
        sys.exit(f"error: {error}")
    counts = ", ".join(f"{len(v)} {k}" for k, v in names.items())
    print(f"Wrote {counts} videos to {args.output} in {time.perf_counter() - start:.1f} s")
    return names


if __name__ == "__main__":
    main()
