"""Score a result folder with the DAVIS 2017 toolkit's definitions (or YouTubeVOS-style on a synthetic set).

    python scripts/evaluate.py --results output/davis_val --gt ../DAVIS/2017 --split val
    python scripts/evaluate.py --benchmark youtube --results output/yv --gt data/synthetic_youtube

DAVIS: prints the paper's table and writes ``<results>/global_results-<split>.csv`` and
``<results>/per-sequence_results-<split>.csv`` (always recomputed; ``--year 2016`` writes
``...-<split>-2016.csv``, so it never overwrites the 2017 tables). Results are ``<sequence>/<frame>.png``
(indexed, grayscale, or RGB in the palette's colours).
YouTubeVOS: needs the full ground truth that only synthetic sets ship (``<gt>/<split>_gt/Annotations``)
and writes ``<results>/youtube_results-<split>.csv`` and ``youtube_per-object_results-<split>.csv``.
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dataset.benchmark_readers import BenchmarkLayoutError  # noqa: E402
from evaluation import EvaluationError, evaluate_davis, format_table, write_davis_csvs  # noqa: E402
from evaluation.tables import TOOLKIT_DECIMALS  # noqa: E402


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", required=True, help="folder of predicted PNGs (<sequence>/<frame>.png)")
    parser.add_argument("--gt", required=True,
                        help="DAVIS root holding trainval/ (e.g. ../DAVIS/2017), or a YouTubeVOS root")
    parser.add_argument("--benchmark", choices=("davis", "youtube"), default="davis",
                        help="DAVIS 2017 toolkit metrics, or YouTubeVOS-style J/F (synthetic sets)")
    parser.add_argument("--split", default=None,
                        help="DAVIS: train|val (default val); YouTubeVOS: valid|test (default valid)")
    parser.add_argument("--year", type=int, choices=(2016, 2017), default=2017,
                        help="DAVIS image set; 2016 scores all objects merged into one")
    parser.add_argument("--resolution", default="480p", help="DAVIS annotation resolution folder")
    parser.add_argument("--decimals", type=int, default=TOOLKIT_DECIMALS,
                        help="decimals in the CSV files (the toolkit writes 3)")
    return parser


def run(args):
    start = time.perf_counter()
    if args.benchmark == "davis":
        split = args.split or "val"
        table = evaluate_davis(args.results, args.gt, split=split, year=args.year, resolution=args.resolution)
        print(format_table(table, split))
        paths = write_davis_csvs(table, args.results, split, decimals=args.decimals, year=args.year)
    else:
        from evaluation.youtube import evaluate_youtube, format_youtube_table, write_youtube_csvs
        split = args.split or "valid"
        table = evaluate_youtube(args.results, args.gt, split=split)
        print(format_youtube_table(table, split))
        paths = write_youtube_csvs(table, args.results, split, decimals=args.decimals)
    print(f"Wrote {', '.join(str(p) for p in paths)} in {time.perf_counter() - start:.1f} s")
    return table


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except (EvaluationError, BenchmarkLayoutError) as error:
        sys.exit(f"error: {error}")
    return 0


if __name__ == "__main__":
    main()
