#!/usr/bin/env python
"""Does the trainer learn? Train STCN from scratch on generated data and score it on held-out videos.

    python scripts/learning_check.py --output benchmarks/results/learning

From nothing but the repository: writes seeded training data (static images for stage 0; DAVIS- and
YouTubeVOS-layout training videos for the main stage) and held-out DAVIS- and YouTubeVOS-layout sets
from other seeds (textured shapes that move, deform, occlude each other, enter late, leave the view
and come back); trains the real STCN with ``train.py`` (``--no_pretrained``, stage 0 then stage 3
from the stage-0 weights; the run's own flags below, recorded in each run's config.json); scores the
checkpoints with ``eval_davis.py`` / ``eval_youtube.py`` as training goes on; scores two baselines on
the same sets (``untrained``: the network train.py builds with the same seed, before any step;
``copy_first_mask``); writes to --output

    curve.csv, curve_youtube.csv    iteration,stage,J&F,J,F for every scored checkpoint
    baselines.csv, baselines_youtube.csv   rows untrained, copy_first_mask; same columns
    learning_curve.png              J&F against iteration, baselines as horizontal lines
    summary.md                      command, machine, wall time, seeds, flags, the numbers

Checkpoints, generated data and predictions stay in --work_dir. Iterations count stage-0 steps first,
then main-stage steps (a main-stage checkpoint at step s is iteration stage0_iterations + s).
"""
import argparse
import csv
import io
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from dataset.synthetic import write_synthetic_davis, write_synthetic_youtube
from dataset.synthetic_static import write_synthetic_static
from evaluation.baselines import copy_first_mask_davis, copy_first_mask_youtube
from evaluation.benchmark import child_env
from evaluation.davis import evaluate_davis
from evaluation.tables import write_davis_csvs
from evaluation.youtube import evaluate_youtube, write_youtube_csvs
from training.checkpoint import save_weights
from training.recipes import get_recipe
from util.atomic_files import atomic_file

ROOT = Path(__file__).resolve().parents[1]

METRICS = ("J&F", "J", "F")


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", required=True, help="results folder (small files only)")
    p.add_argument("--work_dir", default="/tmp/stcn_learning_check",
                   help="generated data, checkpoints and predictions (default /tmp/stcn_learning_check)")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty --work_dir")
    g = p.add_argument_group("data (seeds: training data --seed, held-out DAVIS --seed+1, YouTubeVOS --seed+2)")
    g.add_argument("--seed", type=int, default=0, help="base seed of data and training (default 0)")
    g.add_argument("--height", type=int, default=96, help="frame height of every set (default 96)")
    g.add_argument("--width", type=int, default=160, help="frame width of every set (default 160)")
    g.add_argument("--max_objects", type=int, default=3, help="objects per video: 1..N (default 3)")
    g.add_argument("--deform", type=float, default=0.15, help="non-rigid outline wobble (default 0.15)")
    g.add_argument("--static_images", type=int, default=200, help="stage-0 images (default 200)")
    g.add_argument("--train_videos", type=int, default=20,
                   help="training videos in each of the DAVIS and YouTubeVOS layouts (default 20)")
    g.add_argument("--train_frames", type=int, default=40, help="frames per training video (default 40)")
    g.add_argument("--heldout_videos", type=int, default=4, help="held-out videos per layout (default 4)")
    g.add_argument("--heldout_frames", type=int, default=30, help="frames per held-out video (default 30)")
    g = p.add_argument_group("training (train.py flags; the published recipe assumes ImageNet weights)")
    g.add_argument("--size", type=int, default=64, help="training crop (train.py --size; default 64)")
    g.add_argument("--batch_size", type=int, default=4, help="clips per iteration, both stages (default 4)")
    g.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate from scratch (default 1e-4)")
    g.add_argument("--bn", choices=("train", "frozen"), default="train",
                   help="train.py --bn (default train: from scratch the initial BatchNorm statistics are "
                        "meaningless; see README 'Does it learn?')")
    g.add_argument("--stage0_iterations", type=int, default=40, help="stage-0 steps (default 40)")
    g.add_argument("--main_iterations", type=int, default=200, help="stage-3 steps (default 200)")
    g.add_argument("--decay_at", type=float, default=0.75,
                   help="fraction of the main stage after which lr is x0.1 (train.py --steps; default 0.75, "
                        "like the published 125k of 150k); stage 0 keeps its lr")
    g.add_argument("--eval_every", type=int, default=50,
                   help="score a main-stage checkpoint every N steps (default 50); the stage-0 result is "
                        "scored too")
    g.add_argument("--threads", type=int, default=1,
                   help="torch threads of every child process (default 1: on a shared machine more threads "
                        "than free cores make every step several times slower; 0: torch's own choice)")
    return p


# ---------------------------------------------------------------------------------------------- data
def make_data(args, work):
    common = dict(height=args.height, width=args.width, max_objects=args.max_objects, deform=args.deform)
    data = {"static": work / "data" / "static", "davis": work / "data" / "DAVIS",
            "youtube": work / "data" / "YouTube", "heldout_davis": work / "heldout" / "davis",
            "heldout_youtube": work / "heldout" / "youtube"}
    write_synthetic_static(data["static"], seed=args.seed, count=args.static_images, **common)
    write_synthetic_davis(data["davis"], seed=args.seed, num_train=args.train_videos, num_val=0,
                          num_test_dev=0, length=args.train_frames, **common)
    # the YouTubeVOS layout stores every 5th frame: 5x the frames give as many stored ones
    write_synthetic_youtube(data["youtube"], seed=args.seed, num_train=args.train_videos, num_valid=0,
                            length=5 * args.train_frames, **common)
    # every held-out object may leave the view and come back
    write_synthetic_davis(data["heldout_davis"], seed=args.seed + 1, num_train=0, num_val=args.heldout_videos,
                          num_test_dev=0, length=args.heldout_frames, edge_crossers=args.max_objects, **common)
    write_synthetic_youtube(data["heldout_youtube"], seed=args.seed + 2, num_train=0,
                            num_valid=args.heldout_videos, length=args.heldout_frames,
                            edge_crossers=args.max_objects, **common)
    return data


# ---------------------------------------------------------------------------------------------- runs
def run_child(argv, env, log):
    """Run a repository script with this Python; its output goes to ``log`` and, on failure, stderr."""
    command = [sys.executable, *argv]
    log.write(f"$ {shlex.join(command)}\n")
    log.flush()
    result = subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode:
        log.flush()
        sys.exit(f"error: {argv[0]} failed (exit {result.returncode}); see {log.name}")


def train_flags(args, work, stage, data):
    flags = ["--stage", str(stage), "--save_dir", str(work / "saves"), "--no_pretrained", "--bn", args.bn,
             "--size", str(args.size), "--batch_size", str(args.batch_size), "--lr", str(args.lr),
             "--seed", str(args.seed), "--num_workers", "0", "--device", "cpu", "--no_progress",
             "--log_every", "10", "--log_image_every", "1000000"]
    if stage == 0:
        return flags + ["--id", "stage0", "--iterations", str(args.stage0_iterations), "--steps",
                        "--static_root", str(data["static"]), "--save_every", str(args.stage0_iterations),
                        "--checkpoint_every", str(args.stage0_iterations)]
    return flags + ["--id", "stage3", "--iterations", str(args.main_iterations),
                    "--steps", str(max(1, round(args.decay_at * args.main_iterations))), "--gamma", "0.1",
                    "--davis_root", str(data["davis"]), "--yv_root", str(data["youtube"]),
                    "--save_every", str(args.eval_every), "--checkpoint_every", str(args.eval_every)]


def save_untrained(args, path):
    """The main-stage network exactly as ``train.py`` builds it with this seed (no --load_network)."""
    torch.manual_seed(args.seed)
    save_weights(get_recipe("stcn", stage=3).build_network(single_object=False, pretrained=False), path)
    return path


def score(weights, data, out, env, log):
    """J&F, J, F of ``weights`` on the held-out DAVIS and YouTubeVOS sets (via the eval scripts)."""
    run_child(["eval_davis.py", "--model", str(weights), "--davis_path", str(data["heldout_davis"]),
               "--output", str(out / "davis"), "--device", "cpu"], env, log)
    run_child(["eval_youtube.py", "--model", str(weights), "--yv_path", str(data["heldout_youtube"]),
               "--output", str(out / "youtube"), "--short_side", "0", "--device", "cpu"], env, log)
    return read_davis_scores(out / "davis"), read_youtube_scores(out / "youtube")


def read_davis_scores(folder):
    row = next(csv.DictReader(open(Path(folder) / "global_results-val.csv")))
    return {"J&F": float(row["J&F-Mean"]), "J": float(row["J-Mean"]), "F": float(row["F-Mean"])}


def read_youtube_scores(folder):
    """Mean J and F over every held-out object (seen and unseen categories alike)."""
    rows = list(csv.DictReader(open(Path(folder) / "youtube_per-object_results-valid.csv")))
    j = sum(float(r["J-Mean"]) for r in rows) / len(rows)
    f = sum(float(r["F-Mean"]) for r in rows) / len(rows)
    return {"J&F": (j + f) / 2, "J": j, "F": f}


def score_copy_first_mask(data, work):
    davis_out = copy_first_mask_davis(data["heldout_davis"], work / "eval" / "copy_first_mask" / "davis")
    write_davis_csvs(evaluate_davis(davis_out, data["heldout_davis"]), davis_out)
    youtube_out = copy_first_mask_youtube(data["heldout_youtube"], work / "eval" / "copy_first_mask" / "youtube")
    write_youtube_csvs(evaluate_youtube(youtube_out, data["heldout_youtube"]), youtube_out)
    return read_davis_scores(davis_out), read_youtube_scores(youtube_out)


# ---------------------------------------------------------------------------------------------- outputs
def write_atomic(path, text_or_bytes):
    with atomic_file(path) as temporary:
        if isinstance(text_or_bytes, bytes):
            temporary.write_bytes(text_or_bytes)
        else:
            temporary.write_text(text_or_bytes)
        temporary.chmod(0o644)   # mkstemp's 0600 would hide results from other users


def csv_table(first_column, rows):
    """rows: list of (leading values..., scores dict)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*first_column, *METRICS])
    for *lead, scores in rows:
        writer.writerow([*lead, *(f"{scores[m]:.4f}" for m in METRICS)])
    return buffer.getvalue()


def plot(curves, baselines, args, machine):
    """PNG bytes: J&F against iteration for both held-out sets, baselines as horizontal lines."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, (name, curve) in zip(axes, curves.items()):
        xs = [it for it, _, _ in curve]
        ax.plot(xs, [s["J&F"] for _, _, s in curve], "o-", color="tab:blue", label="STCN checkpoints")
        ax.axvline(args.stage0_iterations, color="grey", linestyle=":", linewidth=1)
        ax.text(args.stage0_iterations, 0.95, " stage 0 | main stage", color="grey", fontsize=8)
        for (label, scores), colour in zip(baselines[name].items(), ("tab:red", "tab:green")):
            ax.axhline(scores["J&F"], color=colour, linestyle="--", label=f"{label} ({scores['J&F']:.2f})")
        ax.set_title(f"held-out {name} layout ({args.heldout_videos} videos)")
        ax.set_xlabel("training iteration (stage 0, then main stage)")
        ax.set_ylim(0, 1)
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    axes[0].set_ylabel("J&F")
    fig.suptitle(f"STCN trained from scratch on generated videos: {args.height}x{args.width} frames, "
                 f"1-{args.max_objects} objects per video, crop {args.size}, batch {args.batch_size}, lr {args.lr:g}, "
                 f"BatchNorm {args.bn}\n{machine}", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def machine_description():
    cpus = os.cpu_count()
    model = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpus} CPU cores ({model}), torch {torch.__version__}, no GPU"


def summary_text(args, argv, machine, wall, curves, baselines, train_commands, load):
    final = {name: curve[-1][2] for name, curve in curves.items()}
    lines = [
        "# Does it learn? STCN trained from scratch on generated videos", "",
        f"Command: `python scripts/learning_check.py {shlex.join(argv)}`  ",
        f"Machine: {machine}; load average at start/end {load[0]:.1f}/{load[1]:.1f}  ",
        f"Wall time: {wall / 60:.1f} min (data, training, every evaluation)  ",
        f"Seeds: training data and network {args.seed}, held-out DAVIS layout {args.seed + 1}, "
        f"held-out YouTubeVOS layout {args.seed + 2}", "",
        f"Data: {args.height}x{args.width} frames, 1-{args.max_objects} textured objects per video (moving, "
        f"rotating, deforming by {args.deform:g}, occluding), {args.static_images} static images, "
        f"{args.train_videos} training videos per layout; held-out: {args.heldout_videos} videos per layout, "
        f"{args.heldout_frames} frames, every object may leave the view and come back, YouTubeVOS objects "
        f"enter late with non-consecutive ids.", "",
        "Training commands (the resolved flags are in each run's config.json):", "",
        *[f"    python {shlex.join(c)}" for c in train_commands], "",
        "| held-out set | final J&F | J | F | untrained J&F | copy_first_mask J&F | margin over the better baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, scores in final.items():
        base = baselines[name]
        margin = scores["J&F"] - max(b["J&F"] for b in base.values())
        lines.append(f"| {name} | {scores['J&F']:.3f} | {scores['J']:.3f} | {scores['F']:.3f} | "
                     f"{base['untrained']['J&F']:.3f} | {base['copy_first_mask']['J&F']:.3f} | {margin:+.3f} |")
    davis = final["DAVIS"]
    base = baselines["DAVIS"]
    passed = (davis["J&F"] - max(b["J&F"] for b in base.values()) >= 0.15
              and base["copy_first_mask"]["J&F"] <= 0.6)
    lines += ["", f"Acceptance (DAVIS layout: final J&F >= both baselines + 0.15, copy_first_mask <= 0.6): "
                  f"**{'passed' if passed else 'FAILED'}**", "",
              "Curves: curve.csv (DAVIS layout), curve_youtube.csv; baselines: baselines.csv, "
              "baselines_youtube.csv; plot: learning_curve.png. YouTubeVOS J and F average every held-out "
              "object after its first given frame.", ""]
    return "\n".join(lines), passed


# ---------------------------------------------------------------------------------------------- main
def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    if args.eval_every < 1 or args.main_iterations < 1 or args.stage0_iterations < 1:
        sys.exit("error: --eval_every, --main_iterations and --stage0_iterations must be positive")
    work, output = Path(args.work_dir).resolve(), Path(args.output).resolve()
    if work.exists() and any(work.iterdir()):
        if not args.overwrite:
            sys.exit(f"error: --work_dir {work} is not empty; pass --overwrite to replace it")
        shutil.rmtree(work)
    if output == work or work in output.parents:
        sys.exit(f"error: --output {output} must lie outside --work_dir {work}")
    start, load_start = time.perf_counter(), os.getloadavg()[0]
    machine = machine_description()
    env = child_env(args.threads, PYTHONUNBUFFERED="1")
    work.mkdir(parents=True, exist_ok=True)
    log = open(work / "learning_check.log", "a")

    def progress(message):
        print(f"[learning_check {(time.perf_counter() - start) / 60:5.1f} min] {message}", flush=True)

    progress(f"writing data under {work} (log: {log.name})")
    data = make_data(args, work)
    baselines = {"DAVIS": {}, "YouTubeVOS": {}}
    copy_davis, copy_youtube = score_copy_first_mask(data, work)
    baselines["DAVIS"]["copy_first_mask"], baselines["YouTubeVOS"]["copy_first_mask"] = copy_davis, copy_youtube
    progress(f"copy_first_mask: DAVIS J&F {copy_davis['J&F']:.3f}, YouTubeVOS J&F {copy_youtube['J&F']:.3f}")
    untrained = save_untrained(args, work / "saves" / "untrained.pth")
    davis, youtube = score(untrained, data, work / "eval" / "untrained", env, log)
    baselines["DAVIS"]["untrained"], baselines["YouTubeVOS"]["untrained"] = davis, youtube
    progress(f"untrained: DAVIS J&F {davis['J&F']:.3f}, YouTubeVOS J&F {youtube['J&F']:.3f}")

    curves = {"DAVIS": [], "YouTubeVOS": []}

    def record(iteration, stage, weights):
        davis, youtube = score(weights, data, work / "eval" / f"iteration{iteration}", env, log)
        curves["DAVIS"].append((iteration, stage, davis))
        curves["YouTubeVOS"].append((iteration, stage, youtube))
        progress(f"iteration {iteration} (stage {stage}): DAVIS J&F {davis['J&F']:.3f}, "
                 f"YouTubeVOS J&F {youtube['J&F']:.3f}")

    stage0 = ["train.py", *train_flags(args, work, 0, data)]
    progress(f"stage 0: {args.stage0_iterations} iterations")
    run_child(stage0, env, log)
    stage0_weights = work / "saves" / "stage0" / f"stage0_{args.stage0_iterations}.pth"
    record(args.stage0_iterations, 0, stage0_weights)

    stage3 = ["train.py", *train_flags(args, work, 3, data), "--load_network", str(stage0_weights)]
    done = 0
    while done < args.main_iterations:   # train in slices (--stop_at, then --resume) and score each
        stop = min(done + args.eval_every, args.main_iterations)
        progress(f"main stage: iterations {done}..{stop} of {args.main_iterations}")
        run_child(stage3 + ["--stop_at", str(stop)] + (["--resume"] if done else []), env, log)
        done = stop
        record(args.stage0_iterations + done, 3, work / "saves" / "stage3" / f"stage3_{done}.pth")

    wall = time.perf_counter() - start
    text, passed = summary_text(args, argv, machine, wall, curves, baselines, [stage0, stage3],
                                (load_start, os.getloadavg()[0]))
    output.mkdir(parents=True, exist_ok=True)
    write_atomic(output / "curve.csv", csv_table(("iteration", "stage"), curves["DAVIS"]))
    write_atomic(output / "curve_youtube.csv", csv_table(("iteration", "stage"), curves["YouTubeVOS"]))
    for name, file in (("DAVIS", "baselines.csv"), ("YouTubeVOS", "baselines_youtube.csv")):
        write_atomic(output / file, csv_table(("baseline",), [(k, v) for k, v in sorted(baselines[name].items(),
                                                                                       reverse=True)]))
    write_atomic(output / "learning_curve.png", plot(curves, baselines, args, machine))
    write_atomic(output / "summary.md", text)
    progress(f"done; final weights {work / 'saves' / 'stage3' / f'stage3_{args.main_iterations}.pth'}; "
             f"results in {output}")
    print(text)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
