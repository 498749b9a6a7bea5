"""Segment a DAVIS split and, when its ground truth exists, print and save the paper's J&F table.

    python eval_davis.py --model saves/stcn.pth --davis_path ../DAVIS/2017 --output output/d17
    python eval_davis.py --model saves/stcn.pth --davis_path ../DAVIS/2017 --split testdev --output output/td
    python eval_davis.py --model saves/stcn.pth --davis_path ../DAVIS/2017 --year 2016 --output output/d16

Writes <output>/<video>/<frame>.png (indexed, the annotation's palette, original size and label ids),
<output>/eval_config.json, and with ground truth global_results-<split>.csv and
per-sequence_results-<split>.csv (the DAVIS 2017 toolkit's definitions, see evaluation/).
The run owns --output (evaluation/output_dir.py): an earlier run's tables and config are removed
before the first mask is written, and eval_config.json records the run's status and finished videos.
Frame-numbering gaps and missing ground truth are warnings (errors with --strict).
"""
import argparse
import contextlib
from pathlib import Path

import numpy as np

from dataset.benchmark_readers import DavisReader, frame_numbering_gap
from evaluation import runner
from evaluation.davis import evaluate_davis
from evaluation.gaps import report_gap
from evaluation.metrics import VOID_LABEL
from evaluation.tables import format_table, write_davis_csvs
from inference import ObjectChannels, segment_video
from util.atomic_files import publish_directory


def build_parser():
    parser = runner.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--davis_path", default="../DAVIS/2017",
                        help="DAVIS root holding trainval/ and test-dev/ (published default ../DAVIS/2017)")
    parser.add_argument("--split", choices=("val", "testdev"), default="val", help="DAVIS split")
    parser.add_argument("--year", type=int, choices=(2016, 2017), default=2017,
                        help="image set; 2016 merges every object into one (single-object protocol)")
    runner.add_common_flags(parser)
    parser.add_argument("--local_rank", type=int, default=None, help=argparse.SUPPRESS)  # legacy launchers
    return parser


def first_mask(video, year):
    labels = video.annotation(video.frame_names[0])
    if year == 2016:
        return (labels != 0).astype(np.uint8)
    return np.where(labels == VOID_LABEL, 0, labels).astype(np.uint8)


def segment_one(network, video, frames, mask, out, options, args):
    """Write every frame's mask (and scores) of ``video`` into the claimed output folder ``out``; its
    folders appear only when complete, and then the video is recorded as written."""
    channels = ObjectChannels.from_masks(mask)
    output = out.path
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(out.publish(output / video.name, video=video.name))
        scores = (stack.enter_context(publish_directory(Path(output) / "scores" / video.name))
                  if args.save_scores else None)
        if channels.ids:
            stream = segment_video(network, frames, mask, memory=args.memory,
                                   device=runner.network_device(network), amp=args.amp, precision=args.precision,
                                   **options)
        else:  # nothing to track: every frame is background
            stream = (np.ones((1, *video.size), np.float32) for _ in frames)
        count = 0
        for frame_name, probs in zip(video.frame_names, stream):
            runner.write_outputs(folder, frame_name, probs, channels, video.palette, scores)
            count += 1
        if count != len(video):
            raise RuntimeError(f"the network gave {count} outputs for {len(video)} frames")


def will_score(reader, videos, strict):
    """Whether the split has full ground truth. Test-dev gives first frames only (no message); a
    val/train video lacking an annotation turns scoring off with a warning naming the file."""
    missing = [path for path in map(reader.missing_ground_truth, videos) if path is not None]
    if not missing:
        return True
    partial = len(missing) < len(videos) or any(len(v.annotation_paths) > 1 for v in videos)
    if partial or reader.split in ("train", "val"):
        report_gap(f"{missing[0]}: ground truth is missing ({len(missing)} of {len(videos)} videos lack "
                   f"annotations), so the masks are not scored", strict)
    return False


def run(args):
    options = runner.validate_flags(args)
    reader = DavisReader(args.davis_path, split=args.split, year=args.year)
    videos = [reader.video(name) for name in reader.sequences]  # check the whole layout before starting
    for video in videos:
        first_mask(video, args.year)  # and that every first annotation reads as a label map
        gap = frame_numbering_gap(video)
        if gap:
            report_gap(gap, args.strict)
    score = will_score(reader, videos, args.strict)
    device = runner.resolve_device(args.device, args.amp, args.precision)
    config = {"benchmark": "davis", "davis_path": str(args.davis_path), "split": args.split, "year": args.year,
              "model": str(args.model), "output": str(args.output), "memory": args.memory,
              "memory_options": runner.resolved_policy_options(args, options), "amp": args.amp,
              "precision": args.precision,
              "device": str(device), "save_scores": args.save_scores, "videos": len(videos)}
    with runner.claim_run_output(args.output) as out:
        network = runner.start_run(args, config, device, out, options)
        runner.segment_videos(videos, device, lambda video, frames: segment_one(
            network, video, frames, first_mask(video, args.year), out, options, args), out)
        if not runner.is_main_process():
            return   # under torchrun rank 0 scores, once every rank has written its videos
        tables = []
        if score:
            table = evaluate_davis(args.output, args.davis_path, split=args.split, year=args.year)
            print(format_table(table, args.split))
            for path in write_davis_csvs(table, args.output, args.split, year=args.year):
                print(f"Wrote {path}")
                tables.append(path.name)
        else:
            print("No full ground truth for this split: masks written, not scored.")
        out.finish(derived_files=tables)


def main(argv=None):
    return runner.run_script(build_parser, run, argv)


if __name__ == "__main__":
    main()
