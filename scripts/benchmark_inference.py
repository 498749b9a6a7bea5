"""Inference speed and peak memory of ``segment_video`` on a synthetic video, as a table.

    python scripts/benchmark_inference.py                      # 10 frames, 480x854, 2 objects, every5
    python scripts/benchmark_inference.py --policies every5 lfu lfu:capacity=4 --length 100

Frames/s counts frame encoding, read-out, decoding, aggregation and the numpy output of every frame,
with the network already built (seeded random weights: ``model.build_network``, or the policy's own
architecture for rde/swem) and the synthetic frames'
rendering left out; by default glibc keeps freed buffers (``util/cpu_allocator.py``,
``--no_malloc_tuning`` to compare) and the core runs channels-last (``every5:channels_last=false``
to compare); "CPU s/frame" is the process's CPU time for the same work (all threads), which a
busy shared machine inflates less than wall time. Each policy runs in a fresh process, so its peak
RSS (model included) is its own.
"""
import argparse
import sys
import time

import torch

from evaluation.benchmark import (TimedIterator, build_network_for, environment_line, mib, peak_rss_bytes, run_isolated,
                                  set_threads, synthetic_clip)
from inference import segment_video
from util import cpu_allocator
from util.cli import parse_policy_spec


def measure(spec, length, height, width, objects, seed=0, threads=None, warmup=0, malloc_tuning=True,
            device="cpu", amp=False, network=None, clip=None):
    """Segment one synthetic clip with the policy ``spec``; returns a dict of measurements.

    ``network``: an already built network for the policy (default: a seeded random one on ``device``);
    ``clip``: (list of frames, first-frame label map) to segment instead of rendering a synthetic clip.
    On CUDA the timing is bracketed by ``torch.cuda.synchronize()`` and ``peak_gpu_mib`` is
    ``torch.cuda.max_memory_allocated`` during the timed clip; ``amp``: fp16 autocast (CUDA only)."""
    set_threads(threads)
    tuned = cpu_allocator.retain_freed_memory()[0] if malloc_tuning else False
    name, options = parse_policy_spec(spec)
    device = torch.device(device)
    network = network if network is not None else build_network_for(name, seed).to(device)
    cuda = device.type == "cuda"
    if warmup:
        frames, mask = (clip[0][:warmup], clip[1]) if clip else synthetic_clip(warmup, height, width, objects,
                                                                                seed=seed + 1)
        for _ in segment_video(network, frames, mask, memory=name, device=device, amp=amp, **options):
            pass
    frames, mask = (clip[0][:length], clip[1]) if clip else synthetic_clip(length, height, width, objects, seed=seed)
    timed = TimedIterator(frames)
    count = 0
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start, cpu = time.perf_counter(), time.process_time()
    for probs in segment_video(network, timed, mask, memory=name, device=device, amp=amp, **options):
        count += probs is not None
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start - timed.seconds
    cpu_seconds = time.process_time() - cpu - timed.cpu_seconds
    return {"policy": spec, "frames": count, "height": height, "width": width, "objects": objects,
            "seconds": seconds, "fps": count / seconds, "cpu_seconds": cpu_seconds,
            "threads": torch.get_num_threads(), "malloc_tuning": tuned, "peak_rss_mib": mib(peak_rss_bytes()),
            "device": str(device), "amp": amp,
            "peak_gpu_mib": mib(torch.cuda.max_memory_allocated(device)) if cuda else None}


def table(rows):
    lines = ["| policy | frames | size | objects | threads | malloc tuning | s/frame | frames/s | CPU s/frame "
             "| peak RSS (MiB) |",
             "|---|---:|---|---:|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['policy']} | {r['frames']} | {r['height']}x{r['width']} | {r['objects']} | "
                     f"{r['threads']} | {'on' if r['malloc_tuning'] else 'off'} | "
                     f"{r['seconds'] / r['frames']:.3f} | {r['fps']:.3f} | "
                     f"{r['cpu_seconds'] / r['frames']:.2f} | {r['peak_rss_mib']:.0f} |")
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policies", nargs="+", default=["every5"],
                        help="memory policies, optionally with options: every5, lfu, lfu:capacity=4, "
                             "every5:max_frames=10 (default: every5)")
    parser.add_argument("--length", type=int, default=10, help="frames in the video (default 10)")
    parser.add_argument("--height", type=int, default=480, help="frame height (default 480)")
    parser.add_argument("--width", type=int, default=854, help="frame width (default 854)")
    parser.add_argument("--objects", type=int, default=2, help="objects in the video (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the video")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: one per core)")
    parser.add_argument("--warmup", type=int, default=0,
                        help="frames of a separate clip segmented first, untimed (default 0)")
    cpu_allocator.add_flag(parser)
    parser.add_argument("--repeat", type=int, default=1, help="runs per policy; the fastest is kept")
    parser.add_argument("--in-process", action="store_true",
                        help="measure in this process (peak RSS is then the maximum so far)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    for spec in args.policies:
        parse_policy_spec(spec)   # fail on a malformed spec before anything runs
    rows = []
    for spec in args.policies:
        runs = []
        for _ in range(args.repeat):
            call = (measure, spec, args.length, args.height, args.width, args.objects, args.seed,
                    args.threads, args.warmup, not args.no_malloc_tuning)
            runs.append(call[0](*call[1:]) if args.in_process else run_isolated(*call))
        rows.append(max(runs, key=lambda r: r["fps"]))
        print(f"{spec}: {rows[-1]['fps']:.3f} frames/s", file=sys.stderr)
    print(environment_line(args.threads))
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
