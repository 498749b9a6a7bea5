"""Score a result folder with the DAVIS 2017 toolkit's definitions (or YouTubeVOS-style on a synthetic set).

    python scripts/evaluate.py --results output/davis_val --gt ../DAVIS/2017 --split val
    python scripts/evaluate.py --benchmark youtube --results output/yv --gt data/synthetic_youtube

DAVIS: prints the paper's table and writes ``<results>/global_results-<split>.csv`` and
``<results>/per-sequence_results-<split>.csv`` (always recomputed; ``--year 2016`` writes
``...-<split>-2016.csv``, so it never overwrites the 2017 tables). Results are ``<sequence>/<frame>.png``
(indexed, grayscale, or RGB in the palette's colours).
YouTubeVOS: needs the full ground truth that only synthetic sets ship (``<gt>/<split>_gt/Annotations``)
and writes ``<results>/youtube_results-<split>.csv`` and ``youtube_per-object_results-<split>.csv``.
Scoring holds the folder's lock (no eval run can write masks meanwhile); a folder whose
eval_config.json says its run did not complete gets a warning (an error with --strict). Every flag is
checked before an old table is removed.
"""
import argparse
import json
import time
from pathlib import Path

from dataset.benchmark_readers import DAVIS_SPLITS
from evaluation import evaluate_davis, format_table, write_davis_csvs
from evaluation.gaps import report_gap
from evaluation.output_dir import COMPLETE, CONFIG_NAME, claim_output
from evaluation.runner import ArgumentParser, add_strict_flag, run_script
from evaluation.tables import TOOLKIT_DECIMALS
from evaluation.youtube import evaluate_youtube, format_youtube_table, write_youtube_csvs

YOUTUBE_SPLITS = ("valid", "test", "train")
MAX_DECIMALS = 15  # float64 carries about 15-17 significant digits


def build_parser():
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
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
    add_strict_flag(parser)
    return parser


def check_flags(args):
    """Every flag checked before anything is read or removed; returns the split."""
    if not 0 <= args.decimals <= MAX_DECIMALS:
        raise argparse.ArgumentTypeError(f"--decimals must lie in 0..{MAX_DECIMALS}, got {args.decimals}")
    choices = sorted(DAVIS_SPLITS) if args.benchmark == "davis" else YOUTUBE_SPLITS
    split = args.split or ("val" if args.benchmark == "davis" else "valid")
    if split not in choices:
        raise argparse.ArgumentTypeError(f"--split {split!r} is not a {args.benchmark} split; choose from "
                                         f"{', '.join(choices)}")
    results = Path(args.results)
    if not results.is_dir():
        raise argparse.ArgumentTypeError(f"--results {results}: folder {'is a file' if results.exists() else 'is missing'}")
    if not Path(args.gt).is_dir():
        raise argparse.ArgumentTypeError(f"--gt {args.gt}: folder is missing")
    return split


def check_run_record(results, strict):
    """Warn (error with --strict) when the eval run that wrote ``results`` did not complete."""
    path = Path(results) / CONFIG_NAME
    try:
        status = json.loads(path.read_text()).get("status", COMPLETE)
    except FileNotFoundError:
        return
    except (OSError, ValueError, AttributeError):
        status = "unreadable"
    if status != COMPLETE:
        report_gap(f"{path}: the run that wrote these masks is {status}, not complete; some videos may "
                   f"be missing or from an earlier run", strict)


def run(args):
    start = time.perf_counter()
    split = check_flags(args)
    with claim_output(args.results):
        check_run_record(args.results, args.strict)
        if args.benchmark == "davis":
            table = evaluate_davis(args.results, args.gt, split=split, year=args.year, resolution=args.resolution)
            print(format_table(table, split))
            paths = write_davis_csvs(table, args.results, split, decimals=args.decimals, year=args.year)
        else:
            table = evaluate_youtube(args.results, args.gt, split=split)
            print(format_youtube_table(table, split))
            paths = write_youtube_csvs(table, args.results, split, decimals=args.decimals)
    print(f"Wrote {', '.join(str(p) for p in paths)} in {time.perf_counter() - start:.1f} s")
    return table


def main(argv=None):
    return run_script(build_parser, run, argv)


if __name__ == "__main__":
    main()
