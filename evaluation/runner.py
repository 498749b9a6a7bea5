"""What eval_davis.py and eval_youtube.py share: flags, network/policy set-up, mask writing, timing.

Each video's outputs are written into a temporary folder that is renamed into place only when the
video is complete; a failing video stops the run with ``VideoFailed`` naming it. A run owns its
output folder through ``claim_run_output`` (``evaluation.output_dir.claim_output``: lock, removal of an
earlier run's tables and leftovers, eval_config.json with the run's status); ``validate_flags`` checks
every shared flag before the model is loaded or anything is written, and ``check_policy`` the policy
against the loaded network once. Under ``torchrun`` the videos are split over the processes
(``evaluation.distributed``): only rank 0 claims the folder, and scripts score and write tables only
where ``is_main_process()``.

Memory options, later ones winning: the policy's own defaults; its preset for the benchmark (a
policy class may define ``PRESETS = {"davis": {...}, "youtube": {...}}``, e.g. RDE's top-k and
theta per benchmark); ``--memory_option KEY=VALUE``; the published flags ``--top``, ``--mem_every``,
``--include_last`` when given.
"""
import argparse
import contextlib
import inspect
import re
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from evaluation import distributed
from evaluation.distributed import is_main_process  # noqa: F401  (the scripts' "score here?" test)
from evaluation.output_dir import CONFIG_NAME, check_output_path
from inference import MEMORY_POLICIES
from inference.policy import make_policy
from inference.precision import FLOAT32, PRECISIONS, check_precision
from model import load_network
from util import cpu_allocator
from util.atomic_files import atomic_file
from util.cli import ArgumentParser, parse_key_values  # noqa: F401  (ArgumentParser: the eval scripts' parser)
from util.interrupts import Interrupted, signals_held
from util.palette import write_label_png

BENCHMARK_PATH_FLAGS = {"davis": "davis_path", "youtube": "yv_path"}   # the flag that names each script's data
FLAG_NAMES = {"precision": "--precision {}", "amp": "--amp", "cpu": "--device cpu"}   # named in precision errors


class VideoFailed(RuntimeError):
    """Processing one video failed; the run stops and names it."""

    def __init__(self, video, error):
        self.video, self.error = video, error
        super().__init__(f"video {video}: {error}")


class AlreadyReported(Exception):
    """This process printed its error line itself (set-up under torchrun); the run ends with status 1."""


def memory_policies():
    return MEMORY_POLICIES


def add_common_flags(parser):
    """The published STCN flags shared by both benchmarks, plus --memory, --precision, --device,
    --save_scores."""
    policies = sorted(memory_policies())
    parser.add_argument("--model", required=True, help="network weights (.pth), e.g. saves/stcn.pth")
    parser.add_argument("--output", required=True, help="folder for the predicted masks")
    parser.add_argument("--top", type=int, default=None,
                        help="top-k filtering of the memory read-out (default: the memory policy's preset "
                             "for this benchmark, else its own default; STCN paper: k = 20)")
    parser.add_argument("--amp", action="store_true", help="mixed precision: float16 autocast (CUDA only)")
    parser.add_argument("--precision", choices=PRECISIONS, default=FLOAT32,
                        help="CPU arithmetic: float32 (default) or bfloat16 (opt-in, torch.autocast on CPU; "
                             "outputs differ by rounding, see README); on CUDA use --amp")
    parser.add_argument("--mem_every", type=int, default=None,
                        help="a frame joins the memory every this many frames (default: the memory policy's "
                             "preset for this benchmark, else its own default; STCN paper: 5)")
    parser.add_argument("--include_last", action="store_true",
                        help="also keep the previous frame as a temporary memory entry")
    parser.add_argument("--memory", choices=policies, default="every5",
                        help="memory policy (inference.MEMORY_POLICIES): " + ", ".join(policies))
    parser.add_argument("--memory_option", action="append", default=[], metavar="KEY=VALUE",
                        help="extra option of the memory policy, e.g. max_frames=20 (repeatable)")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    cpu_allocator.add_flag(parser)
    parser.add_argument("--save_scores", action="store_true",
                        help="also save the soft outputs: scores/<video>/<frame>.npz (float16, channels = "
                             "background then object ids)")
    add_strict_flag(parser)
    return parser


def add_strict_flag(parser):
    parser.add_argument("--strict", action="store_true",
                        help="treat gaps in the data (frame numbering gaps, videos missing from meta.json, "
                             "missing ground truth that turns scoring off) as errors instead of warnings")


def validate_flags(args):
    """Every shared flag checked before the model is loaded or anything is written (ArgumentTypeError)."""
    for flag, value in (("--top", args.top), ("--mem_every", args.mem_every)):
        if value is not None and value < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be a positive integer, got {value}")
    check_output_path(args.output)
    options = policy_options(args)
    resolve_device(args.device, args.amp, getattr(args, "precision", "float32"))
    return options


def benchmark_of(args):
    """``args.benchmark`` when set, else the benchmark whose data flag the script parsed (or None)."""
    if getattr(args, "benchmark", None):
        return args.benchmark
    found = [name for name, flag in BENCHMARK_PATH_FLAGS.items() if hasattr(args, flag)]
    return found[0] if len(found) == 1 else None


def policy_preset(policy_class, benchmark):
    """The options ``policy_class.PRESETS`` gives ``benchmark`` (none when it has no preset for it)."""
    return dict(getattr(policy_class, "PRESETS", {}).get(benchmark, {}))


def policy_options(args, benchmark=None):
    """Options for the chosen memory policy: its preset for ``benchmark`` (default ``benchmark_of(args)``)
    overridden by --memory_option, then by the flags it accepts; the rest stay at its own defaults."""
    options = policy_preset(memory_policies()[args.memory], benchmark or benchmark_of(args))
    try:
        options.update(parse_key_values(args.memory_option, "--memory_option"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    flagged = {"top_k": args.top, "mem_every": args.mem_every,
               "include_last": True if args.include_last else None}
    accepted = inspect.signature(memory_policies()[args.memory].__init__).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in accepted.values())
    for key, value in flagged.items():
        if value is None:
            continue
        if key not in accepted and not takes_any:
            raise argparse.ArgumentTypeError(f"memory policy {args.memory!r} has no option {key!r}")
        options[key] = value
    unknown = [k for k in options if k not in accepted and not takes_any]
    if unknown:
        raise argparse.ArgumentTypeError(f"memory policy {args.memory!r} has no option {unknown[0]!r}; it takes "
                                         f"{[k for k in accepted if k not in ('self', 'network')]}")
    for key, value in options.items():
        _check_option_type(args.memory, key, value, accepted.get(key))
    return options


def _check_option_type(memory, key, value, parameter):
    """A number or switch option given something else (e.g. text) is refused before the model loads;
    None stays allowed (some policies read it as "unset"), other kinds are checked by the policy."""
    default = inspect.Parameter.empty if parameter is None else parameter.default
    if value is None or not isinstance(default, (bool, int, float)):
        return
    if isinstance(default, bool):
        ok, kind = isinstance(value, bool), "True or False"
    elif isinstance(default, int):
        ok, kind = isinstance(value, int) and not isinstance(value, bool), "an integer"
    else:
        ok, kind = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    if not ok:
        raise argparse.ArgumentTypeError(f"--memory_option {key}={value!r}: memory policy {memory!r} expects "
                                         f"{kind} like its default {default!r}")


def check_policy(args, network, options):
    """Build the memory policy once on the loaded network: an option value or a network the policy
    cannot use is one error naming the flags, not a failure of the first video."""
    try:
        make_policy(args.memory, network, **options)
    except (ValueError, TypeError) as error:
        raise argparse.ArgumentTypeError(f"--memory {args.memory} with options {options} on the network of "
                                         f"--model {args.model} ({type(network).__name__}): {error}") from None


def resolved_policy_options(args, options):
    """Every option of the policy with the value this run uses (defaults filled in), for the config."""
    params = inspect.signature(memory_policies()[args.memory].__init__).parameters
    resolved = {k: p.default for k, p in params.items()
                if k not in ("self", "network") and p.default is not inspect.Parameter.empty}
    resolved.update(options)
    return resolved


def resolve_device(device, amp=False, precision="float32"):
    """The torch device to run on (default: cuda when available; under torchrun the GPU of the
    process's LOCAL_RANK); a device this machine lacks is an ArgumentTypeError naming --device; --amp
    needs CUDA, --precision bfloat16 the CPU, and the two exclude each other."""
    if device:
        try:
            resolved = torch.device(device)
        except (RuntimeError, ValueError) as error:
            raise argparse.ArgumentTypeError(f"--device {device!r} is not a torch device ({error})") from None
    else:
        resolved = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:  # first: its message says which device the precision flags need
        check_precision(precision, resolved, amp, names=FLAG_NAMES)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (resolved.index is not None and resolved.index >= count):
            raise argparse.ArgumentTypeError(f"--device {device}: this machine has {count} CUDA device(s)")
    elif resolved.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"--device {device}: MPS is not available on this machine")
    elif resolved.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"--device {device}: only cpu, cuda[:N] and mps are supported")
    return distributed.rank_device(resolved)


def network_device(network):
    return next(network.parameters()).device


def load_model(path, device):
    return load_network(path, device=device)


def tune_allocator(args):
    """Apply the CPU allocator tuning unless --no_malloc_tuning; returns what happened, for the config."""
    if args.no_malloc_tuning:
        return "off (--no_malloc_tuning)"
    applied, reason = cpu_allocator.retain_freed_memory()
    return "on" if applied else f"unavailable: {reason}"


def start_run(args, config, device, out, options):
    """Tune the allocator, print the run's configuration (rank 0), load the network and check the policy
    on it, then start the claimed output folder ``out`` (earlier results go, eval_config.json is written).
    Under torchrun the other ranks start writing only once rank 0 has started the folder."""
    context = distributed.current()
    config = {**config, "malloc_tuning": tune_allocator(args), "processes": context.world_size}
    if device.type == "cuda":
        # every frame of a video has one size: cuDNN's autotuner picks the fastest kernels once per shape
        torch.backends.cudnn.benchmark = True
        config["cudnn_benchmark"] = True
    with _set_up_failure_ends_every_rank(context):
        if context.is_main:
            print_config(config)
        network = load_model(args.model, device)
        check_policy(args, network, options)
        out.start(config)   # rank 0's claimed folder; a no-op on the other ranks
    _end_set_up(context)
    return network


@contextlib.contextmanager
def claim_run_output(path):
    """The run's output folder (``evaluation.distributed.claim``); under torchrun, rank 0 failing to claim
    it ends the set-up of every rank (``_end_set_up``)."""
    with contextlib.ExitStack() as stack:
        with _set_up_failure_ends_every_rank(distributed.current()):
            out = stack.enter_context(distributed.claim(path))
        yield out


@contextlib.contextmanager
def _set_up_failure_ends_every_rank(context):
    """An error in the block ends this rank's set-up with it (``_end_set_up``), then propagates."""
    try:
        yield
    except Exception as error:
        _end_set_up(context, error)
        raise


def _end_set_up(context, error=None):
    """Under torchrun, every rank ends its set-up here, with its ``error`` or none; when one failed, each
    prints one line (its own error, or which rank stopped the run) and waits for the others' lines before
    any leaves: torchrun stops the remaining ranks with SIGTERM as soon as one exits, cutting off lines
    not yet printed. Raises ``AlreadyReported`` then."""
    if not context.distributed:
        return
    failed = distributed.failed_ranks(context, error is not None, "the output folder was ready")
    if not failed:
        return
    # on the way out: torchrun's SIGTERM must not cut the line, the wait or rank 0's folder clean-up short
    with signals_held(reraise=False):
        if error is None:
            ranks = ", ".join(map(str, failed))
            print(f"error: rank {ranks} of this run stopped before the output folder was ready (its error is "
                  f"printed above){distributed.describe_rank(context)}", file=sys.stderr, flush=True)
        else:
            print(report_failure(error), file=sys.stderr, flush=True)
        distributed.wait_for_all(context, "every process had printed why the run stopped")
    raise AlreadyReported() from error


def segment_videos(videos, device, segment_one, out, after_each=None):
    """``segment_one(video, frames)`` for every video of this process's share (all of them without
    torchrun), where ``frames`` streams the video's frames and advances a per-frame progress bar (long
    videos show progress, not only finished videos), then ``after_each(video)`` if given (not timed:
    e.g. drawing overlays); then, on rank 0 once every rank is done, the other ranks' videos are
    recorded as written in the claimed folder ``out`` (rank 0's own are recorded as published) and the
    line with total frames, time and FPS (aggregate over the ranks) is printed. A failing video stops
    the run as ``VideoFailed`` naming it (and its rank under torchrun)."""
    context = distributed.current()
    share = distributed.my_share(videos, context)
    timer = Timer(device)
    label = f"frames (rank {context.rank})" if context.distributed else "frames"
    with tqdm(total=sum(len(video) for video in share) or None, desc=label, unit="frame",
              position=context.rank) as bar:
        for index, video in enumerate(share):
            bar.set_postfix_str(f"video {index + 1}/{len(share)} {video.name}", refresh=False)
            frames = FrameProgress(video.frames(), bar)
            try:
                timer.run(lambda: segment_one(video, frames))
                timer.frames += frames.count
                if after_each is not None:
                    after_each(video)
            except Exception as error:
                raise VideoFailed(video.name + distributed.describe_rank(context), error) from error
    reports = distributed.gather((timer.totals(), [video.name for video in share]), context)
    if context.is_main:
        others = [name for rank, (_, names) in enumerate(reports) if rank != context.rank for name in names]
        if others:
            out.video_done(*others)
        print(summary_line([totals for totals, _ in reports], context.world_size))


class FrameProgress:
    """Iterates over ``frames``, counting them and advancing ``bar`` by one per frame read."""

    def __init__(self, frames, bar):
        self.frames, self.bar, self.count = frames, bar, 0

    def __iter__(self):
        for frame in self.frames:
            self.count += 1
            self.bar.update(1)
            yield frame


def print_config(config):
    print("Configuration:")
    for key in sorted(config):
        print(f"  {key}: {config[key]}")


def save_scores(path, probs, channels):
    """``path`` (.npz): ``probs`` as float16 and ``object_ids``, the label id of each channel after the
    background (``channels``: inference.labels.ObjectChannels)."""
    with atomic_file(path) as temporary:
        with open(temporary, "wb") as handle:
            np.savez_compressed(handle, probs=probs.astype(np.float16), object_ids=np.array(channels.ids, np.int64))


def write_outputs(folder, frame_name, probs, channels, palette, scores_folder=None):
    """``<folder>/<frame_name>.png``: the label map of (K+1) x H x W ``probs`` whose channels are
    ``channels`` (ObjectChannels), and its scores file when ``scores_folder`` is given."""
    write_label_png(Path(folder) / f"{frame_name}.png", channels.to_labels(probs), palette)
    if scores_folder is not None:
        save_scores(Path(scores_folder) / f"{frame_name}.npz", probs, channels)


SUMMARY_PATTERN = re.compile(r"Processed (\d+) frames of (\d+) videos(?: on \d+ processes)? in ([\d.]+) s: "
                             r"([\d.]+|nan) FPS")


def parse_summary(text):
    """{'frames', 'videos', 'seconds', 'fps'} of the last end-of-run line (``summary_line``) in a
    run's printed output, e.g. for benchmarks that run the eval scripts as commands; None if absent."""
    found = SUMMARY_PATTERN.findall(text)
    if not found:
        return None
    frames, videos, seconds, fps = found[-1]
    return {"frames": int(frames), "videos": int(videos), "seconds": float(seconds), "fps": float(fps)}


class Timer:
    """Frames processed, wall time, FPS, and peak CUDA memory for the end-of-run line."""

    def __init__(self, device):
        self.device = device
        self.frames = 0
        self.videos = 0
        self.seconds = 0.0
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)

    def run(self, work):
        """Time ``work()`` as one video; the caller adds the frames it processed to ``frames``."""
        start = time.perf_counter()
        result = work()
        self.seconds += time.perf_counter() - start
        self.videos += 1
        return result

    def totals(self):
        peak = None
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
        return {"frames": self.frames, "videos": self.videos, "seconds": self.seconds, "peak_bytes": peak}


def summary_line(totals, processes=1):
    """The end-of-run line from every process's ``Timer.totals()``: frames/s is the aggregate, all
    frames over the slowest process's time (processes run side by side)."""
    frames = sum(t["frames"] for t in totals)
    videos = sum(t["videos"] for t in totals)
    seconds = max(t["seconds"] for t in totals)
    fps = frames / seconds if seconds > 0 else float("nan")
    where = f" on {processes} processes" if processes > 1 else ""
    line = f"Processed {frames} frames of {videos} videos{where} in {seconds:.1f} s: {fps:.2f} FPS"
    if processes > 1:
        line += " (aggregate)"
    peaks = [t["peak_bytes"] for t in totals if t["peak_bytes"] is not None]
    if peaks:
        line += f", peak GPU memory {max(peaks) / 2 ** 20:.0f} MiB" + (" per process" if processes > 1 else "")
    return line


def report_failure(error):
    """The message printed when a run stops; unexpected errors keep their traceback."""
    cause = error.error if isinstance(error, VideoFailed) else error
    if not isinstance(cause, (ValueError, OSError, KeyError, argparse.ArgumentTypeError, distributed.PeerStopped)):
        traceback.print_exception(type(cause), cause, cause.__traceback__)
    return f"error: {error}"


def run_script(build_parser, run, argv=None):
    """An eval script's main: parse, run, and end an input problem with one "error: ..." line; SIGINT and
    SIGTERM end it with "error: interrupted ..." and the exit status 128 + signal number."""
    args = build_parser().parse_args(argv)
    context = None
    try:
        with distributed.session(getattr(args, "device", None)) as context:  # scripts/evaluate.py has none
            run(args)
    except (argparse.ArgumentTypeError, VideoFailed, ValueError, OSError, distributed.PeerStopped) as error:
        # ValueError: the layout, evaluation, checkpoint, output-folder and gap errors naming the file
        sys.exit(report_failure(error))
    except AlreadyReported:
        sys.exit(1)
    except KeyboardInterrupt as error:
        status = error.exit_status if isinstance(error, Interrupted) else 130
        print(f"error: {error or 'interrupted'}{distributed.describe_rank(context)}; "
              f"{getattr(args, 'output', None) or 'the output'} keeps only "
              f"the videos finished so far (see {CONFIG_NAME})", file=sys.stderr, flush=True)
        sys.exit(status)
    return 0
