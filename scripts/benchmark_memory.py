"""Speed and memory of memory policies on synthetic videos of growing length, with plots.

    python scripts/benchmark_memory.py --policies every5 lfu --lengths 50 200 1000 3000 \\
        --height 96 --width 160 --objects 2 --output benchmarks/results/memory

For every policy (default: every policy in ``inference.MEMORY_POLICIES``; options as in
``lfu:capacity=4`` or ``every5:max_frames=20``) and every length, a fresh process segments a lazily
generated ``dataset.synthetic.SyntheticVideo`` (DAVIS protocol, network with seeded random weights)
and records frames/s (network, read-out and memory work; frame rendering left out), its peak resident
memory (model included) and, every ``--sample_every`` frames, the number of memory features and the
current RSS. Writes ``runs.csv``, ``memory.csv``, ``memory_vs_frame.png``, ``rss_vs_frame.png``,
``fps_vs_length.png``, ``peak_rss_vs_length.png`` and ``summary.md`` (a table, and each policy's
peak-RSS change from ``--growth_from`` frames to the longest length) into ``--output``.
"""
import argparse
import csv
import os
import sys
import textwrap
import time

import torch
from tqdm import tqdm

from dataset.synthetic import SyntheticVideo
from evaluation.benchmark import (build_network_for, current_rss_bytes, environment_line, mib, peak_rss_bytes,
                                  run_isolated, set_threads)
from inference import MEMORY_POLICIES, InferenceCore
from util.cli import parse_policy_spec

RUN_FIELDS = ["policy", "length", "height", "width", "objects", "seconds", "fps", "peak_rss_mib",
              "final_memory_features", "max_memory_features", "final_memory_frames"]
SAMPLE_FIELDS = ["policy", "length", "frame", "memory_features", "memory_frames", "rss_mib"]


def measure(spec, length, height, width, objects, seed=0, threads=None, sample_every=10, progress=False,
            device="cpu", amp=False, network=None, video=None):
    """One policy on one video, in the calling process; returns (run row, sample rows). ``progress``:
    a per-frame progress bar on stderr (a 3000-frame run takes many minutes on a CPU). On CUDA the
    samples also hold ``gpu_mib`` (``torch.cuda.memory_allocated``) and the run ``peak_gpu_mib``;
    ``network``: an already built one for the policy (default: seeded random weights on ``device``);
    ``video``: any object with ``frame(t) -> (rgb, labels)`` and ``labels(0)`` instead of a SyntheticVideo."""
    set_threads(threads)
    name, options = parse_policy_spec(spec)
    device = torch.device(device)
    cuda = device.type == "cuda"
    network = network if network is not None else build_network_for(name, seed).to(device)
    video = video or SyntheticVideo(seed=seed, height=height, width=width, num_objects=objects, length=length)
    first_mask = video.labels(0)
    core = InferenceCore(network, memory=name, device=device, amp=amp, **options)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    seconds, samples = 0.0, []
    with torch.inference_mode():
        for t in tqdm(range(length), desc=f"{spec}, {length} frames", unit="frame", disable=not progress,
                      leave=False):
            rgb = video.frame(t)[0]
            start = time.perf_counter()
            probs = core.step(t, rgb, mask=first_mask if t == 0 else None, is_last=t == length - 1)
            probs.cpu().numpy()   # waits for the device too
            seconds += time.perf_counter() - start
            if t % sample_every == 0 or t == length - 1:
                stats = core.stats()
                samples.append({"policy": spec, "length": length, "frame": t,
                                "memory_features": stats["memory_features"],
                                "memory_frames": stats["memory_frames"], "rss_mib": mib(current_rss_bytes()),
                                "gpu_mib": mib(torch.cuda.memory_allocated(device)) if cuda else None})
    run = {"policy": spec, "length": length, "height": height, "width": width, "objects": objects,
           "seconds": seconds, "fps": length / seconds, "peak_rss_mib": mib(peak_rss_bytes()),
           "final_memory_features": samples[-1]["memory_features"],
           "max_memory_features": max(s["memory_features"] for s in samples),
           "final_memory_frames": samples[-1]["memory_frames"],
           "peak_gpu_mib": mib(torch.cuda.max_memory_allocated(device)) if cuda else None}
    return run, samples


def growth(runs, policy, low, high):
    """Relative peak-RSS change of ``policy`` from length ``low`` to ``high`` (None if not measured)."""
    peak = {r["length"]: float(r["peak_rss_mib"]) for r in runs if r["policy"] == policy}
    if low in peak and high in peak:
        return peak[high] / peak[low] - 1
    return None


def longest_run(runs, policy):
    return max(int(r["length"]) for r in runs if r["policy"] == policy)


def summary(runs, policies, lengths, header, growth_from=200):
    lines = ["# Memory benchmark", "", header, "",
             "| policy | frames | frames/s | peak RSS (MiB) | memory size (end) | unit | memory frames (end) |",
             "|---|---:|---:|---:|---:|---|---:|"]
    for r in runs:
        lines.append(f"| {r['policy']} | {r['length']} | {float(r['fps']):.2f} | {float(r['peak_rss_mib']):.0f} | "
                     f"{r['final_memory_features']} | {memory_unit(r['policy'])} | {r['final_memory_frames']} |")
    low, high = (growth_from if growth_from in lengths else min(lengths)), max(lengths)
    if low < high:
        lines += ["", f"Peak RSS change from {low} to {high} frames:", "",
                  "| policy | change |", "|---|---:|"]
        for policy in policies:
            g, to = growth(runs, policy, low, high), ""
            if g is None and longest_run(runs, policy) > low:   # a policy measured up to a shorter length
                g, to = growth(runs, policy, low, longest_run(runs, policy)), f" (to {longest_run(runs, policy)})"
            lines.append(f"| {policy} | {'n/a' if g is None else f'{100 * g:+.1f}%'}{to} |")
    return "\n".join(lines) + "\n"


# a distinct marker and line style per policy, so no line hides under another
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")


def line_style(index):
    return {"marker": MARKERS[index % len(MARKERS)], "linestyle": LINESTYLES[index % len(LINESTYLES)]}


def memory_unit(policy):
    """What a policy's "memory features" count: SWEM holds bases per object, the others key positions."""
    return "bases per object" if parse_policy_spec(policy)[0] == "swem" else "key positions"


def figures(runs, samples, policies, header):
    """{file name: matplotlib figure} of the benchmark; every title names the video size, objects and
    machine (``header``), and axes from which a ratio is read start at zero."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    header = textwrap.fill(header, 95)   # a title line that fits the panel
    longest = {policy: longest_run(runs, policy) for policy in policies}
    video = (f"a {max(longest.values())}-frame video" if len(set(longest.values())) == 1
             else "each policy's longest video")
    out = {}
    for field, ylabel, name, scales in (("memory_features", "memory size", "memory_vs_frame.png", ("linear", "log")),
                                        ("rss_mib", "resident memory (MiB)", "rss_vs_frame.png", ("linear",))):
        # memory size: a log-scale panel beside the linear one, where bounded policies lie flat
        fig, axes = plt.subplots(1, len(scales), figsize=(7 * len(scales), 4.5), squeeze=False)
        for ax, scale in zip(axes[0], scales):
            for index, policy in enumerate(policies):
                rows = [s for s in samples if s["policy"] == policy and int(s["length"]) == longest[policy]]
                unit = [memory_unit(policy)] if field == "memory_features" else []
                frames = [f"{longest[policy]} frames"] if len(set(longest.values())) > 1 else []
                label = policy + (f" ({', '.join(unit + frames)})" if unit + frames else "")
                ax.plot([int(s["frame"]) for s in rows], [float(s[field]) for s in rows], label=label,
                        markevery=max(1, len(rows) // 12), **line_style(index))
            ax.set_yscale(scale)
            if scale == "linear":
                ax.set_ylim(bottom=0)
            ax.set_xlim(left=0)
            ax.set_xlabel("frame index")
            ax.set_ylabel(ylabel + (" (log scale)" if scale == "log" else ""))
            ax.set_title(f"{ylabel} over {video}\n{header}", fontsize=8)
            ax.legend(fontsize=8)
        fig.tight_layout()
        out[name] = fig
    for field, ylabel, name in (("fps", "frames/s", "fps_vs_length.png"),
                                ("peak_rss_mib", "peak RSS (MiB)", "peak_rss_vs_length.png")):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for index, policy in enumerate(policies):
            rows = sorted((r for r in runs if r["policy"] == policy), key=lambda r: int(r["length"]))
            ax.plot([int(r["length"]) for r in rows], [float(r[field]) for r in rows], label=policy,
                    **line_style(index))
        ax.set_xscale("log")
        ax.set_ylim(bottom=0)
        ax.set_xlabel("video length (frames)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{ylabel} by video length\n{header}", fontsize=8)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out[name] = fig
    return out


def plot(runs, samples, policies, output, header):
    import matplotlib.pyplot as plt

    for name, fig in figures(runs, samples, policies, header).items():
        fig.savefig(os.path.join(output, name), dpi=100)
        plt.close(fig)


def write_csv(path, fields, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")   # GPU columns: gpu_check.py
        writer.writeheader()
        writer.writerows(rows)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policies", nargs="+", default=None,
                        help="policies with optional options (lfu:capacity=4, every5:max_frames=20); "
                             "default: every registered policy")
    parser.add_argument("--lengths", nargs="+", type=int, default=[50, 200, 1000, 3000],
                        help="video lengths in frames (default 50 200 1000 3000)")
    parser.add_argument("--height", type=int, default=96, help="frame height (default 96)")
    parser.add_argument("--width", type=int, default=160, help="frame width (default 160)")
    parser.add_argument("--objects", type=int, default=2, help="objects in the video (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the videos")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: one per core)")
    parser.add_argument("--sample_every", type=int, default=10,
                        help="record memory features and RSS every this many frames (default 10)")
    parser.add_argument("--growth_from", type=int, default=200,
                        help="summary: peak-RSS change from this length to the longest (default 200)")
    parser.add_argument("--output", default="benchmarks/results/memory", help="output folder")
    parser.add_argument("--no_progress", action="store_true", help="no per-frame progress bar")
    parser.add_argument("--replot", action="store_true",
                        help="measure nothing: redraw the plots and summary from the CSVs in --output")
    parser.add_argument("--in-process", action="store_true",
                        help="measure in this process (peak RSS is then the maximum so far; for tests)")
    args = parser.parse_args(argv)
    if any(n < 1 for n in args.lengths) or args.sample_every < 1:
        parser.error("lengths and --sample_every must be >= 1")
    return args


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def replot(args):
    runs = read_csv(os.path.join(args.output, "runs.csv"))
    samples = read_csv(os.path.join(args.output, "memory.csv"))
    policies = list(dict.fromkeys(r["policy"] for r in runs))
    lengths = sorted({int(r["length"]) for r in runs})
    for r in runs:
        r["length"] = int(r["length"])
    with open(os.path.join(args.output, "summary.md")) as f:
        header = f.read().splitlines()[2]
    text = summary(runs, policies, lengths, header, args.growth_from)
    with open(os.path.join(args.output, "summary.md"), "w") as f:
        f.write(text)
    plot(runs, samples, policies, args.output, header)
    print(text)
    return runs, samples


def main(argv=None):
    args = parse_args(argv)
    if args.replot:
        return replot(args)
    if args.policies is None:
        args.policies = sorted(MEMORY_POLICIES)
    for spec in args.policies:
        parse_policy_spec(spec)   # fail on a malformed spec before anything runs
    os.makedirs(args.output, exist_ok=True)
    header = (f"{args.height}x{args.width}, {args.objects} objects, seed {args.seed}; "
              f"{environment_line(args.threads)}")
    runs, samples = [], []
    # length-major: the policies' runs of one length follow each other, so a change in the machine's
    # load during a long benchmark skews their comparison less
    for length in sorted(args.lengths):
        for spec in args.policies:
            call = (measure, spec, length, args.height, args.width, args.objects, args.seed, args.threads,
                    args.sample_every, not args.no_progress)
            run, run_samples = call[0](*call[1:]) if args.in_process else run_isolated(*call)
            runs.append(run)
            samples.extend(run_samples)
            runs.sort(key=lambda r: (args.policies.index(r["policy"]), r["length"]))
            print(f"{spec} {length} frames: {run['fps']:.2f} frames/s, peak RSS {run['peak_rss_mib']:.0f} MiB, "
                  f"{run['final_memory_features']} memory features", file=sys.stderr, flush=True)
            # written after every run, so a long benchmark that is cut off keeps what it measured
            write_csv(os.path.join(args.output, "runs.csv"), RUN_FIELDS, runs)
            write_csv(os.path.join(args.output, "memory.csv"), SAMPLE_FIELDS, samples)
    text = summary(runs, args.policies, args.lengths, header, args.growth_from)
    with open(os.path.join(args.output, "summary.md"), "w") as f:
        f.write(text)
    plot(runs, samples, args.policies, args.output, header)
    print(text)
    return runs, samples


if __name__ == "__main__":
    main()
