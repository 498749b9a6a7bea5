"""Segment a YouTubeVOS split and pack the benchmark server's upload zip.

    python eval_youtube.py --model saves/stcn.pth --yv_path ../YouTube --output output/yv

Frames are processed with the shorter side resized to 480 (bilinear; given masks nearest), and the
probabilities resized back to the original size (bilinear, align_corners=False) before the argmax;
a memory policy that resizes frames itself (SWEM's work size) gets them at full size
(``MemoryPolicy.evaluator_short_side``, rules in ``inference/frame_size.py``).
When ``<split>_all_frames`` exists (``all_frames/valid_all_frames`` or ``valid_all_frames``) every
frame is processed and outputs are made for the sparse frames of ``<split>/JPEGImages`` only.
Writes <output>/Annotations/<video>/<frame>.png (the annotation palette, original ids),
<output>/<split>_submission.zip (Annotations/<video>/<frame>.png) and <output>/eval_config.json; on
synthetic sets (which ship ``<split>_gt``) also prints and writes YouTubeVOS-style J/F.
The run owns --output (evaluation/output_dir.py): an earlier run's zip, tables and config are removed
before the first mask is written. Videos on disk but absent from meta.json and missing ground truth
are warnings (errors with --strict).
"""
import argparse
import contextlib
import zipfile
from pathlib import Path

from dataset.benchmark_readers import YouTubeReader
from evaluation import runner
from evaluation.gaps import report_gap
from evaluation.resizing import resize_frames, resize_given_masks, restore_probs
from evaluation.youtube import evaluate_youtube, format_youtube_table, write_youtube_csvs
from inference import MEMORY_POLICIES, ObjectChannels, segment_video
from inference.frame_size import YOUTUBE_SHORT_SIDE, short_side_size
from util.atomic_files import atomic_file, publish_directory


def build_parser():
    parser = runner.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--yv_path", default="../YouTube",
                        help="YouTubeVOS root holding <split>/ and optionally all_frames/<split>_all_frames/")
    parser.add_argument("--split", choices=("valid", "test"), default="valid", help="YouTubeVOS split")
    parser.add_argument("--short_side", type=int, default=None,
                        help=f"frames are resized so their shorter side has this many pixels (0: keep size; "
                             f"default {YOUTUBE_SHORT_SIDE}, or 0 when the memory policy resizes frames "
                             f"itself, e.g. SWEM's work_size)")
    runner.add_common_flags(parser)
    parser.add_argument("--local_rank", type=int, default=None, help=argparse.SUPPRESS)  # legacy launchers
    return parser


def segment_one(network, reader, video, frames, out, options, args):
    """Write the required frames' masks (and scores) of ``video`` into the claimed output folder
    ``out``; folders appear only when complete, and then the video is recorded as written."""
    given = reader.given_masks(video)
    size = video.size
    work_size = short_side_size(*size, args.short_side)
    masks = resize_given_masks(given, work_size, video.name)
    channels = ObjectChannels.from_masks(masks)  # the channels segment_video will return
    required = {i for i, name in enumerate(video.frame_names) if name in video.required_names}
    output = out.path
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(out.publish(output / "Annotations" / video.name, video=video.name))
        scores = (stack.enter_context(publish_directory(Path(output) / "scores" / video.name))
                  if args.save_scores else None)
        stream = segment_video(network, resize_frames(frames, work_size), masks, memory=args.memory,
                               required_frames=required, device=runner.network_device(network), amp=args.amp,
                               precision=args.precision, **options)
        written = 0
        for t, (frame_name, probs) in enumerate(zip(video.frame_names, stream)):
            if t not in required:
                continue
            if probs is None:
                raise RuntimeError(f"no output for required frame {frame_name}")
            runner.write_outputs(folder, frame_name, restore_probs(probs, size), channels, video.palette, scores)
            written += 1
        if written != len(required):
            raise RuntimeError(f"wrote {written} of the {len(required)} required frames")


def write_submission_zip(output, split, videos):
    """``<output>/<split>_submission.zip`` holding Annotations/<video>/<frame>.png for ``videos``."""
    path = Path(output) / f"{split}_submission.zip"
    with atomic_file(path) as temporary:
        with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
            for video in videos:
                for png in sorted((Path(output) / "Annotations" / video).glob("*.png")):
                    archive.write(png, f"Annotations/{video}/{png.name}")
    return path


def resolve_short_side(args, options):
    """The processing size: the --short_side flag when given, else the memory policy's choice for
    YouTubeVOS (480p, or 0 = full size when the policy with ``options`` resizes frames itself)."""
    if args.short_side is not None:
        return args.short_side
    return MEMORY_POLICIES[args.memory].evaluator_short_side("youtube", options)


def will_score(yv_path, split, videos, strict):
    """Whether to score: only synthetic sets ship ``<split>_gt``; when it exists, a video without its
    ground-truth folder turns scoring off with a warning naming that folder."""
    gt_root = Path(yv_path) / f"{split}_gt" / "Annotations"
    if not gt_root.parent.is_dir():
        return False
    missing = [gt_root / v.name for v in videos if not (gt_root / v.name).is_dir()]
    if missing:
        report_gap(f"{missing[0]}: ground truth is missing ({len(missing)} of {len(videos)} videos), so the "
                   f"masks are not scored", strict)
        return False
    return True


def run(args):
    options = runner.validate_flags(args)
    if args.short_side is not None and args.short_side < 0:
        raise argparse.ArgumentTypeError(f"--short_side must be >= 0 (0 keeps the frame size), got {args.short_side}")
    args.short_side = resolve_short_side(args, options)
    reader = YouTubeReader(args.yv_path, split=args.split)
    for name in reader.videos_missing_from_meta():
        report_gap(f"video {name} is in {reader.sparse_root} but not in {reader.meta_path}: it is not segmented "
                   f"and not in the upload zip", args.strict)
    videos = [reader.video(name) for name in reader.videos]  # check the whole layout before starting
    for video in videos:
        reader.given_masks(video)  # and that every given annotation reads as a label map
    score = will_score(args.yv_path, args.split, videos, args.strict)
    device = runner.resolve_device(args.device, args.amp, args.precision)
    config = {"benchmark": "youtube", "yv_path": str(args.yv_path), "split": args.split,
              "all_frames": str(reader.all_frames_root) if reader.all_frames_root else None,
              "short_side": args.short_side, "model": str(args.model), "output": str(args.output),
              "memory": args.memory, "memory_options": runner.resolved_policy_options(args, options),
              "amp": args.amp, "precision": args.precision, "device": str(device), "save_scores": args.save_scores,
              "videos": len(videos)}
    with runner.claim_run_output(args.output) as out:
        network = runner.start_run(args, config, device, out, options)
        runner.segment_videos(videos, device, lambda video, frames: segment_one(network, reader, video, frames,
                                                                                out, options, args), out)
        if not runner.is_main_process():
            return   # under torchrun rank 0 zips and scores, once every rank has written its videos
        zip_path = write_submission_zip(args.output, args.split, [v.name for v in videos])
        print(f"Wrote {zip_path}")
        tables = [zip_path.name]
        if score:
            table = evaluate_youtube(args.output, args.yv_path, split=args.split)
            print(format_youtube_table(table, args.split))
            for path in write_youtube_csvs(table, args.output, args.split):
                print(f"Wrote {path}")
                tables.append(path.name)
        out.finish(derived_files=tables)


def main(argv=None):
    return runner.run_script(build_parser, run, argv)


if __name__ == "__main__":
    main()
