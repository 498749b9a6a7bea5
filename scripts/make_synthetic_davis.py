"""Write a tiny DAVIS-2017-layout dataset of synthetic textured shapes (seeded, fast).

    python scripts/make_synthetic_davis.py --output data/synthetic_davis --height 240 --width 427
    python eval_davis.py --model saves/stcn.pth --davis_path data/synthetic_davis --output out/

Layout: trainval/{JPEGImages,Annotations}/480p/<video>/00000.jpg|png, trainval/ImageSets/2016|2017/
train.txt|val.txt, test-dev/ (first annotation only, ImageSets/2017/test-dev.txt).
"""
import argparse
import sys
import time


from dataset.synthetic import write_synthetic_davis


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", required=True, help="dataset root to create (holds trainval/ and test-dev/)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same set")
    parser.add_argument("--train", type=int, default=2, help="number of train videos")
    parser.add_argument("--val", type=int, default=2, help="number of val videos")
    parser.add_argument("--test_dev", type=int, default=1, help="number of test-dev videos")
    parser.add_argument("--frames", type=int, default=8, help="frames per video")
    parser.add_argument("--height", type=int, default=480, help="frame height (DAVIS 480p: 480)")
    parser.add_argument("--width", type=int, default=854, help="frame width (DAVIS 480p: 854)")
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
        names = write_synthetic_davis(args.output, seed=args.seed, num_train=args.train, num_val=args.val,
                                      num_test_dev=args.test_dev, length=args.frames, height=args.height,
                                      width=args.width, max_objects=args.max_objects, overwrite=args.overwrite,
                                      edge_crossers=args.edge_crossers, deform=args.deform)
    except (FileExistsError, ValueError) as error:
        sys.exit(f"error: {error}")
    counts = ", ".join(f"{len(v)} {k}" for k, v in names.items())
    print(f"Wrote {counts} videos to {args.output} in {time.perf_counter() - start:.1f} s")
    return names


if __name__ == "__main__":
    main()
