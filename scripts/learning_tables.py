"""Comparison tables on one trained checkpoint (issue 12), each from one command:

    nice -n 10 python scripts/learning_tables.py memory --model CKPT --output benchmarks/results/learning
    nice -n 10 python scripts/learning_tables.py precision --model CKPT --output benchmarks/results/learning

``memory``: the memory policies every5, every5 with ``max_frames``, LFU at capacity 2 and 4 (AMM
paper: bounded memory, little J&F loss) on short held-out videos and on long ones (>= 1000 frames,
objects leaving and re-entering the view). ``precision``: float32 against bfloat16 (CPU autocast,
``--precision bfloat16``) on the same videos.

Every configuration is one run of ``eval_davis.py`` itself (``--device cpu``) in a fresh process:
J&F, J and F are its DAVIS-toolkit scores, frames/s its end-of-run line (segmentation with frame
reading and mask writing, model loading left out), and peak RSS the process's own high-water mark
(model included). Both held-out sets are generated seeded (DAVIS layout, every frame annotated) into
``--work_dir`` unless ``--short_set`` names an existing DAVIS-layout root. Writes
``memory_policies.{csv,md,png}`` or ``precision.{csv,md}`` into ``--output``; the CSV grows after
every run, so a cut-off run keeps what it measured.
"""
import argparse
import csv
import json
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
from tqdm import tqdm

from dataset.benchmark_readers import DavisReader
from dataset.synthetic import write_synthetic_davis
from evaluation.benchmark import child_env, environment_line, mib, run_command_measured
from evaluation.runner import parse_summary
from evaluation.tables import davis_csv_paths
from util.atomic_files import atomic_file
from util.cli import parse_policy_spec
from util.palette import read_label_png

REPO = Path(__file__).resolve().parents[1]
MEMORY_POLICIES = ["every5", "every5:max_frames=4", "lfu:capacity=2", "lfu:capacity=4"]  # AMM paper: 2 and 4
PRECISIONS = ["float32", "bfloat16"]
LONG_FRAMES = 1000   # issue 12: long held-out videos have at least 1000 frames
FIELDS = ["table", "config", "videos", "set", "frames", "J&F", "J", "F", "fps", "peak_rss_mib",
          "agreement_with_first"]


# ---------------------------------------------------------------- held-out sets
def held_out_set(root, seed, videos, frames, height, width, max_objects, deform):
    """A DAVIS-layout val set of ``videos`` synthetic videos under ``root`` in which every object may
    leave the view and come back (as the learning check's held-out sets), generated once per parameter
    set (a stamp file records them; other parameters regenerate it)."""
    params = {"seed": seed, "videos": videos, "frames": frames, "height": height, "width": width,
              "max_objects": max_objects, "deform": deform}
    stamp = Path(root) / "generated.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == params:
        return Path(root)
    write_synthetic_davis(root, seed=seed, num_train=0, num_val=videos, num_test_dev=0, length=frames,
                          height=height, width=width, max_objects=max_objects, edge_crossers=max_objects,
                          deform=deform, overwrite=True)
    stamp.write_text(json.dumps(params))
    return Path(root)


def prepare_sets(args):
    """{'short': root, 'long': root} of the sets this table runs on (``--sets``)."""
    work = Path(args.work_dir)
    common = dict(max_objects=args.max_objects, deform=args.deform)
    sets = {}
    if "short" in args.sets:
        sets["short"] = Path(args.short_set) if args.short_set else held_out_set(
            work / "short", args.short_seed, args.short_videos, args.short_frames, args.height, args.width, **common)
    if "long" in args.sets:
        sets["long"] = held_out_set(work / "long", args.long_seed, args.long_videos, args.long_frames,
                                    args.long_height or args.height, args.long_width or args.width, **common)
    return sets


def describe_set(root):
    """Videos, their lengths, objects, and how often an object left the view and came back."""
    reader = DavisReader(root, split="val")
    lengths, objects, returns = [], 0, 0
    for name in reader.sequences:
        video = reader.video(name)
        lengths.append(len(video))
        size = video.size
        present = [set(np.unique(video.annotation(frame)).tolist()) - {0, 255} for frame in video.frame_names]
        ids = set().union(*present)
        objects += len(ids)
        returns += sum(1 for i in ids for before, now in zip(present, present[1:])
                       if i not in before and i in now and i in present[0])
    return {"videos": len(lengths), "frames": sum(lengths), "min_length": min(lengths),
            "max_length": max(lengths), "objects": objects, "returns": returns, "size": size}


# ---------------------------------------------------------------- one configuration
def eval_command(args, data, output, memory_spec, precision):
    name, options = parse_policy_spec(memory_spec)
    argv = [sys.executable, str(REPO / "eval_davis.py"), "--model", str(args.model), "--davis_path", str(data),
            "--output", str(output), "--device", "cpu", "--memory", name, "--precision", precision]
    for key, value in options.items():
        argv += ["--memory_option", f"{key}={value}"]
    return argv


def measure(args, table, config, set_name, data, memory_spec, precision):
    """One eval_davis.py run in a fresh process; returns its row (scores, frames/s, peak RSS)."""
    output = Path(args.work_dir) / "runs" / table / set_name / config.replace(":", "_").replace("=", "")
    measured = output.parent / f"{output.name}.json"
    argv = eval_command(args, data, output, memory_spec, precision)
    if args.reuse and measured.is_file():
        row = json.loads(measured.read_text())
        if row.get("command") == argv[1:]:
            return row
    output.mkdir(parents=True, exist_ok=True)
    env = child_env(args.threads)
    log = output.parent / f"{output.name}.log"
    code, _, peak = run_command_measured(argv, log, env)
    printed = log.read_text()
    if code != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed (exit {code}); its output ({log}) ends with:\n"
                           f"{printed[-2000:]}")
    timing = parse_summary(printed)
    scores = read_global_scores(output)
    row = {"table": table, "config": config, "videos": timing["videos"], "set": set_name,
           "frames": timing["frames"], "J&F": scores["J&F-Mean"], "J": scores["J-Mean"], "F": scores["F-Mean"],
           "fps": timing["fps"], "peak_rss_mib": mib(peak), "output": str(output), "command": argv[1:]}
    with atomic_file(measured) as temporary:
        temporary.write_text(json.dumps(row))
    return row


def read_global_scores(output, split="val"):
    global_csv = davis_csv_paths(output, split)[0]
    with open(global_csv, newline="") as f:
        return {k: float(v) for k, v in next(csv.DictReader(f)).items()}


def label_agreement(folder, reference):
    """Fraction of pixels whose label equals the reference run's, over every mask PNG of the run."""
    same = total = 0
    for path in sorted(Path(reference).glob("*/*.png")):
        a, b = read_label_png(path)[0], read_label_png(Path(folder) / path.relative_to(reference))[0]
        same += int((a == b).sum())
        total += a.size
    return same / total if total else float("nan")


# ---------------------------------------------------------------- tables
def configurations(args):
    """[(config label, memory spec, precision)] of the chosen table."""
    if args.table == "memory":
        return [(spec, spec, "float32") for spec in args.policies]
    return [(precision, args.memory, precision) for precision in PRECISIONS]


def markdown(rows, args, sets, seconds):
    title = {"memory": "Memory policies on one checkpoint",
             "precision": "Precision on CPU: float32 against bfloat16"}[args.table]
    described = {name: describe_set(root) for name, root in sets.items()}
    lines = [f"# {title}", "",
             f"Command: `{shlex.join(['python', 'scripts/learning_tables.py', *args.argv])}`  ",
             f"Checkpoint: `{args.model}`  ",
             f"Machine: {environment_line()}; each run {args.threads} thread(s), {args.jobs} run(s) at a "
             f"time; wall time {seconds / 60:.1f} min  "]
    for name, info in described.items():
        lines.append(f"{name} videos: {info['videos']} videos of {info['min_length']}-{info['max_length']} frames "
                     f"at {info['size'][0]}x{info['size'][1]}, "
                     f"{info['objects']} objects, {info['returns']} returns of an object into the view after "
                     f"it left (`{sets[name]}`)  ")
    lines += ["", "J&F, J, F: DAVIS 2017 toolkit definitions (first and last frame excluded), in [0, 1]. "
              "frames/s: eval_davis.py's end-of-run line (segmentation incl. frame reading and mask writing). "
              "Peak RSS: the eval process's high-water mark, model included. The runs share a busy machine "
              f"({args.jobs} at a time): compare frames/s as ratios within one table.", ""]
    first = configurations(args)[0][0]
    lines += [f"| set | config | frames | J&F | J | F | frames/s | peak RSS (MiB) | pixels labelled as {first} |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['config']} | {r['frames']} | {float(r['J&F']):.3f} | {float(r['J']):.3f} | "
                     f"{float(r['F']):.3f} | {float(r['fps']):.2f} | {float(r['peak_rss_mib']):.0f} | "
                     f"{100 * float(r['agreement_with_first']):.2f}% |")
    return "\n".join(lines) + "\n"


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    set_names = list(dict.fromkeys(r["set"] for r in rows))
    configs = list(dict.fromkeys(r["config"] for r in rows))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    width = 0.8 / max(len(set_names), 1)
    for ax, (field, label) in zip(axes, (("J&F", "J&F"), ("fps", "frames/s"), ("peak_rss_mib", "peak RSS (MiB)"))):
        for i, set_name in enumerate(set_names):
            values = {r["config"]: float(r[field]) for r in rows if r["set"] == set_name}
            xs = [c + i * width for c in range(len(configs))]
            ax.bar(xs, [values.get(c, float("nan")) for c in configs], width, label=f"{set_name} videos")
        ax.set_xticks([c + width * (len(set_names) - 1) / 2 for c in range(len(configs))])
        ax.set_xticklabels(configs, rotation=15)
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle("Memory policies on one checkpoint (eval_davis.py, CPU)")
    fig.tight_layout()
    with atomic_file(path) as temporary:
        fig.savefig(temporary, dpi=100, format="png")
    plt.close(fig)


def write_csv(path, rows):
    with atomic_file(path) as temporary:
        with open(temporary, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


def write_results(rows, args, sets, seconds, stem):
    """The table files of the runs done so far (rows in table order); rewritten after every run."""
    output = Path(args.output)
    first = configurations(args)[0][0]
    for row in rows:   # pixels labelled as by the first configuration on the same videos, once it ran
        reference = next((r for r in rows if r["set"] == row["set"] and r["config"] == first), None)
        row["agreement_with_first"] = (label_agreement(row["output"], reference["output"]) if reference
                                       else float("nan"))
    write_csv(output / f"{stem}.csv", rows)
    text = markdown(rows, args, sets, seconds)
    with atomic_file(output / f"{stem}.md") as temporary:
        temporary.write_text(text)
    if args.table == "memory":
        plot(rows, output / f"{stem}.png")
    return text


def run_table(args):

    start = time.perf_counter()
    sets = prepare_sets(args)
    stem = {"memory": "memory_policies", "precision": "precision"}[args.table]
    Path(args.output).mkdir(parents=True, exist_ok=True)
    jobs = [(set_name, root, config) for set_name, root in sets.items() for config in configurations(args)]
    # the long videos first: they take longest and carry the memory claim, should the run be cut off
    order = sorted(range(len(jobs)), key=lambda i: jobs[i][0] != "long")
    done = {}
    # each run is its own process: threads only wait for them
    with ThreadPoolExecutor(args.jobs) as pool, tqdm(total=len(jobs), desc=f"{args.table} table", unit="run") as bar:
        futures = {}
        for i in order:
            set_name, root, (label, spec, precision) = jobs[i]
            futures[pool.submit(measure, args, args.table, label, set_name, root, spec, precision)] = i
        for future in as_completed(futures):
            row = done[futures[future]] = future.result()
            bar.update()
            tqdm.write(f"{row['set']} {row['config']}: J&F {row['J&F']:.3f}, {row['fps']:.2f} frames/s, "
                       f"peak RSS {row['peak_rss_mib']:.0f} MiB")
            text = write_results([done[i] for i in sorted(done)], args, sets, time.perf_counter() - start, stem)
    print(text)
    return [done[i] for i in sorted(done)]


# ---------------------------------------------------------------- command line
def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", choices=("memory", "precision"), help="which table to make")
    parser.add_argument("--model", required=True, help="the trained checkpoint (.pth)")
    parser.add_argument("--output", default="benchmarks/results/learning", help="folder for the table files")
    parser.add_argument("--work_dir", default="runs/learning_tables",
                        help="generated sets and every run's masks and log (not committed)")
    parser.add_argument("--sets", nargs="+", choices=("short", "long"), default=None,
                        help="held-out sets to run on (default: memory short long; precision short)")
    parser.add_argument("--policies", nargs="+", default=MEMORY_POLICIES,
                        help="memory table: policies with options (default: " + " ".join(MEMORY_POLICIES) + ")")
    parser.add_argument("--memory", default="every5", help="precision table: the memory policy (default every5)")
    parser.add_argument("--short_set", default=None,
                        help="an existing DAVIS-layout root to use as the short set (its val split), e.g. "
                             "the learning check's held-out set; default: generate one")
    g = parser.add_argument_group("generated sets (defaults: the learning check's held-out DAVIS set)")
    g.add_argument("--short_videos", type=int, default=4, help="short set: videos (default 4)")
    g.add_argument("--short_frames", type=int, default=30, help="short set: frames per video (default 30)")
    g.add_argument("--short_seed", type=int, default=1, help="short set: seed (default 1)")
    g.add_argument("--long_videos", type=int, default=1, help="long set: videos (default 1)")
    g.add_argument("--long_frames", type=int, default=LONG_FRAMES,
                   help=f"long set: frames per video (default {LONG_FRAMES})")
    g.add_argument("--long_seed", type=int, default=4, help="long set: seed (default 4: two objects)")
    g.add_argument("--long_height", type=int, default=None, help="long set: frame height (default --height)")
    g.add_argument("--long_width", type=int, default=None, help="long set: frame width (default --width)")
    g.add_argument("--height", type=int, default=96, help="frame height (default 96)")
    g.add_argument("--width", type=int, default=160, help="frame width (default 160)")
    g.add_argument("--max_objects", type=int, default=3, help="objects per video: 1..N (default 3)")
    g.add_argument("--deform", type=float, default=0.15, help="non-rigid outline wobble (default 0.15)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each run (default 1)")
    parser.add_argument("--reuse", action="store_true",
                        help="take a configuration's measurement from --work_dir when an earlier run of the same "
                             "eval command finished there (e.g. configurations run as separate commands)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at a time (default 1; with 2, two configurations share the machine and "
                             "each one's frames/s is measured beside another run)")
    return parser


def check_args(args):
    """Input problems, as one message, before anything runs."""
    if not Path(args.model).is_file():
        return f"--model {args.model}: no such file"
    if args.short_set and not Path(args.short_set).is_dir():
        return f"--short_set {args.short_set}: no such folder"
    for spec in (args.policies if args.table == "memory" else [args.memory]):
        try:
            name, _ = parse_policy_spec(spec)
        except ValueError as error:
            return f"--policies/--memory: {error}"
        if name not in ("every5", "lfu"):
            return f"{spec}: these tables run STCN memory policies (every5, lfu), not {name!r}"
    numbers = {"--short_videos": args.short_videos, "--short_frames": args.short_frames,
               "--long_videos": args.long_videos, "--long_frames": args.long_frames, "--threads": args.threads,
               "--jobs": args.jobs}
    for flag, value in numbers.items():
        if value < 1:
            return f"{flag} must be >= 1, got {value}"
    if args.short_frames < 3 or args.long_frames < 3:
        return "the DAVIS protocol scores frames 1..n-2: --short_frames and --long_frames must be >= 3"
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = build_parser().parse_args(argv)
    args.argv = argv
    if args.sets is None:
        args.sets = ["short", "long"] if args.table == "memory" else ["short"]
    problem = check_args(args)
    if problem:
        sys.exit(f"error: {problem}")
    try:
        return run_table(args)
    except (RuntimeError, ValueError, OSError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
