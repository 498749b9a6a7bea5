"""Segment your own videos: folders of frames with masks where objects first appear, or a video file.

    python eval_generic.py --model saves/stcn.pth --data_path ../custom --output output/custom
    python eval_generic.py --model saves/stcn.pth --video clip.mp4 --mask first.png --output output/clip --overlay
    python eval_generic.py --model saves/stcn.pth --data_path ../footage_4k --output output/4k --max_side 960

--data_path holds JPEGImages/<video>/<frame>.jpg|png (every frame) and Annotations/<video>/<frame>.png:
label PNGs for any subset of frames, each object given in the first of them that holds it (any label
ids, e.g. a new object entering at frame 40). --video reads a file through OpenCV one frame at a time
(frames are named 00000, 00001, ...) with --mask, the label PNG of its first frame.
Writes <output>/<video>/<frame>.png for every frame (indexed, the palette of the given masks, original
size and label ids) and <output>/eval_config.json; with --overlay also <output>/overlays/<video>.mp4
(masks over the frames, ids at the centroids) and <video>.gif (a short preview).
--max_side N processes frames whose longer side exceeds N at that size (frames bilinear, masks
nearest) and resizes the probabilities back (bilinear) before the argmax, so masks keep full size.
The run owns --output like the other eval scripts (evaluation/output_dir.py): an earlier run's
overlays and config are removed before the first mask is written, eval_config.json records the status.
"""
import argparse
import contextlib
from pathlib import Path

from dataset.user_videos import FolderVideos, VideoFile
from evaluation import runner
from evaluation.overlay import DEFAULT_FPS, write_overlay
from evaluation.resizing import resize_frames, resize_given_masks, restore_probs
from inference import ObjectChannels, segment_video
from inference.frame_size import max_side_size
from util.atomic_files import publish_directory

OVERLAY_FOLDER = "overlays"
SCORES_FOLDER = "scores"


def build_parser():
    parser = runner.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_path", default=None,
                        help="folder holding JPEGImages/<video>/ and Annotations/<video>/ (published flag)")
    parser.add_argument("--video", default=None, help="a video file (e.g. clip.mp4) instead of --data_path")
    parser.add_argument("--mask", default=None, help="with --video: label PNG of the video's first frame")
    parser.add_argument("--max_side", type=int, default=0,
                        help="process frames with the longer side reduced to at most this many pixels; masks "
                             "are still written at full size (default 0: original size)")
    parser.add_argument("--overlay", action="store_true",
                        help=f"also write {OVERLAY_FOLDER}/<video>.mp4 and .gif: masks drawn over the frames")
    parser.add_argument("--overlay_fps", type=float, default=None,
                        help=f"frame rate of the overlay videos (default: the video file's own, "
                             f"{DEFAULT_FPS} for frame folders)")
    runner.add_common_flags(parser)
    return parser


def open_videos(args):
    """Every input video, each checked (frames, masks) before anything is written."""
    if (args.data_path is None) == (args.video is None):
        raise argparse.ArgumentTypeError("give either --data_path (folders of frames) or --video (a file)")
    if args.video is not None:
        if args.mask is None:
            raise argparse.ArgumentTypeError("--video needs --mask, the label PNG of its first frame")
        videos = [VideoFile(args.video, args.mask)]
    else:
        if args.mask is not None:
            raise argparse.ArgumentTypeError("--mask goes with --video; with --data_path masks are read from "
                                             "Annotations/<video>/")
        reader = FolderVideos(args.data_path)
        videos = [reader.video(name) for name in reader.videos]
    for video in videos:
        video.given_masks()  # every given mask reads as a label map holding an object
        reserved = {OVERLAY_FOLDER} if args.overlay else set()
        reserved |= {SCORES_FOLDER} if args.save_scores else set()
        if video.name in reserved:
            raise argparse.ArgumentTypeError(f"video {video.name}: its result folder would be the "
                                             f"{video.name}/ folder of the other outputs; rename the video")
    return videos


def segment_one(network, video, frames, out, options, args):
    """Write every frame's mask (and scores) of ``video`` into the claimed output folder ``out``; its
    folders appear only when complete, and then the video is recorded as written."""
    size = video.size
    work_size = max_side_size(*size, args.max_side)
    masks = resize_given_masks(video.given_masks(), work_size, video.name)
    channels = ObjectChannels.from_masks(masks)  # the channels segment_video will return
    if not channels.ids:
        raise ValueError(f"no object of the given masks survives resizing to {work_size[0]}x{work_size[1]}; "
                         f"raise --max_side")
    output = out.path
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(out.publish(output / video.name, video=video.name))
        scores = (stack.enter_context(publish_directory(output / SCORES_FOLDER / video.name))
                  if args.save_scores else None)
        stream = segment_video(network, resize_frames(frames, work_size), masks, memory=args.memory,
                               device=runner.network_device(network), amp=args.amp, precision=args.precision,
                               **options)
        for frame_name, probs in zip(video.frame_names, stream):
            runner.write_outputs(folder, frame_name, restore_probs(probs, size), channels, video.palette, scores)


def write_overlays(video, args):
    """<output>/overlays/<video>.mp4 and .gif from the frames and the masks just written."""
    path = Path(args.output) / OVERLAY_FOLDER / f"{video.name}.mp4"
    write_overlay(video.frame_names, video.frames(), Path(args.output) / video.name, path,
                  fps=args.overlay_fps or video.fps or DEFAULT_FPS, gif_path=path.with_suffix(".gif"))


def run(args):
    if args.max_side < 0:
        raise argparse.ArgumentTypeError(f"--max_side must be 0 (original size) or positive, got {args.max_side}")
    if args.overlay_fps is not None and args.overlay_fps <= 0:
        raise argparse.ArgumentTypeError(f"--overlay_fps must be positive, got {args.overlay_fps}")
    options = runner.validate_flags(args)
    videos = open_videos(args)
    device = runner.resolve_device(args.device, args.amp, args.precision)
    config = {"benchmark": "generic", "data_path": None if args.data_path is None else str(args.data_path),
              "video": None if args.video is None else str(args.video),
              "mask": None if args.mask is None else str(args.mask), "max_side": args.max_side,
              "overlay": args.overlay, "overlay_fps": args.overlay_fps, "model": str(args.model),
              "output": str(args.output), "memory": args.memory,
              "memory_options": runner.resolved_policy_options(args, options), "amp": args.amp,
              "precision": args.precision, "device": str(device), "save_scores": args.save_scores,
              "videos": len(videos)}
    with runner.claim_run_output(args.output) as out:
        network = runner.start_run(args, config, device, out, options)
        runner.segment_videos(videos, device,
                              lambda video, frames: segment_one(network, video, frames, out, options, args), out,
                              after_each=(lambda video: write_overlays(video, args)) if args.overlay else None)
        if args.overlay and runner.is_main_process():  # under torchrun each rank draws its own videos
            print(f"Wrote {Path(args.output) / OVERLAY_FOLDER}/<video>.mp4 and .gif")
        out.finish()


def main(argv=None):
    return runner.run_script(build_parser, run, argv)


if __name__ == "__main__":
    main()
