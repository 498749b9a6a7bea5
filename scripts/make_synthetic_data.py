"""Write a tiny seeded dataset of synthetic textured shapes in a published layout (no download).

    python scripts/make_synthetic_data.py --layout davis --output data/synth_davis --size 240 427
    python scripts/make_synthetic_data.py --layout youtube --output data/synth_yv --size 240 427
    python scripts/make_synthetic_data.py --layout training --output /tmp/vos_data --size 64 96

--layout davis: DAVIS 2017 for eval_davis.py. trainval/{JPEGImages,Annotations}/480p/<video>/00000.jpg|png,
  trainval/ImageSets/2016|2017/train.txt|val.txt, test-dev/ (first annotation only,
  ImageSets/2017/test-dev.txt).
--layout youtube: YouTubeVOS for eval_youtube.py. train/{JPEGImages,Annotations,meta.json} at every 5th
  frame; valid/JPEGImages (every 5th frame), valid/Annotations (only where objects are first given),
  valid/meta.json; all_frames/valid_all_frames/JPEGImages (every frame); valid_gt/Annotations (full
  ground truth, only in synthetic sets, for scripts/evaluate.py --benchmark youtube). Valid objects
  have non-consecutive ids and may enter late; triangles never occur in train, so they are the
  "unseen" category.
--layout training: train.py's data, static/{BIG_small,ECSSD,FSS/<class>} (stage 0), BL30K/ (stage 1),
  DAVIS/2017/trainval/ and YouTube/train_480p/ (stages 2 and 3); see dataset/synthetic_training.py.

--output, --seed, --size and --frames apply to every layout; each layout adds its own flags
(``--layout davis -h`` lists them). --height/--width (davis, youtube) set one side each, as --size does.
The same seed writes the same set.
"""
import argparse
import sys
import time

from dataset.synthetic import write_synthetic_davis, write_synthetic_youtube
from dataset.synthetic_training import PARTS, write_synthetic_training_data

LAYOUTS = ("davis", "youtube", "training")
DEFAULT_SIZE = {"davis": (480, 854), "youtube": (480, 854), "training": (64, 96)}
DEFAULT_FRAMES = {"davis": 8, "youtube": 16, "training": 8}


def build_parser(layout=None):
    """The flags of ``layout`` (None: only the flags every layout shares)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layout", choices=LAYOUTS, required=True, help="which published layout to write")
    parser.add_argument("--output", required=True, help="folder to create the dataset in")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same set")
    height, width = DEFAULT_SIZE.get(layout, (None, None))
    parser.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                        help=f"frame size (default {height} {width})" if layout else
                             "frame size (default 480 854 for davis/youtube, 64 96 for training)")
    parser.add_argument("--frames", type=int, default=DEFAULT_FRAMES.get(layout),
                        help="frames per video" + (f" (default {DEFAULT_FRAMES[layout]})" if layout else "")
                             + ("; every 5th is annotated / in JPEGImages" if layout == "youtube" else ""))
    if layout == "training":
        _training_flags(parser)
    elif layout in ("davis", "youtube"):
        _benchmark_flags(parser, layout)
    return parser


def _training_flags(parser):
    parser.add_argument("--videos", type=int, default=3, help="videos per video dataset (default 3)")
    parser.add_argument("--images", type=int, default=4, help="images per static set/class (default 4)")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                        help="which layouts to write (default all)")


def _benchmark_flags(parser, layout):
    parser.add_argument("--train", type=int, default=2, help="number of train videos")
    if layout == "davis":
        parser.add_argument("--val", type=int, default=2, help="number of val videos")
        parser.add_argument("--test_dev", type=int, default=1, help="number of test-dev videos")
    else:
        parser.add_argument("--valid", type=int, default=2, help="number of valid videos")
    parser.add_argument("--height", type=int, default=None, help="frame height (default 480, DAVIS 480p)")
    parser.add_argument("--width", type=int, default=None, help="frame width (default 854, DAVIS 480p)")
    parser.add_argument("--max_objects", type=int, default=3, help="objects per video: 1..max_objects")
    parser.add_argument("--edge_crossers", type=int, default=None,
                        help="objects per video (the last ones) that leave the view across the left/right edge "
                             "and re-enter from the other side (default: the last object when there are 2+)")
    parser.add_argument("--deform", type=float, default=0.0,
                        help="non-rigid outline wobble, fraction of the radius in [0, 0.5) (default 0: rigid)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --output")


def parse_args(argv=None):
    """Parse with the flags of the layout that ``--layout`` names; --size, --height and --width
    resolve to ``args.height``/``args.width``."""
    chooser = argparse.ArgumentParser(add_help=False)
    chooser.add_argument("--layout", choices=LAYOUTS)
    layout = chooser.parse_known_args(argv)[0].layout
    parser = build_parser(layout)
    args = parser.parse_args(argv)
    height, width = args.size or DEFAULT_SIZE[layout]
    if layout != "training":
        if args.size and (args.height is not None or args.width is not None):
            parser.error("give the frame size as --size H W or as --height/--width, not both")
        height = height if args.height is None else args.height
        width = width if args.width is None else args.width
    args.height, args.width = height, width
    return args


def write(args):
    """Write the dataset ``args`` describe; returns {split: [video names]} (davis, youtube) or the
    output folder (training)."""
    if args.layout == "training":
        return write_synthetic_training_data(args.output, args.height, args.width, args.videos, args.frames,
                                             args.images, args.seed, args.parts)
    common = dict(seed=args.seed, num_train=args.train, length=args.frames, height=args.height,
                  width=args.width, max_objects=args.max_objects, overwrite=args.overwrite,
                  edge_crossers=args.edge_crossers, deform=args.deform)
    if args.layout == "davis":
        return write_synthetic_davis(args.output, num_val=args.val, num_test_dev=args.test_dev, **common)
    return write_synthetic_youtube(args.output, num_valid=args.valid, **common)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    try:
        written = write(args)
    except (FileExistsError, ValueError) as error:
        sys.exit(f"error: {error}")
    if args.layout == "training":
        print(f"synthetic training data written to {written}")
    else:
        counts = ", ".join(f"{len(v)} {k}" for k, v in written.items())
        print(f"Wrote {counts} videos to {args.output} in {time.perf_counter() - start:.1f} s")
    return written


if __name__ == "__main__":
    main()
