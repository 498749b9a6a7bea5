"""Everything a GPU must show, in one run and one Markdown report.

    python scripts/gpu_check.py                          # CUDA machine: under 8 minutes on one H200
    python scripts/gpu_check.py --device cpu --quick     # every step at a tiny size (the test suite's run)

Steps, each a group of rows of one table (also printed), with the wall seconds it took:
- parity: the golden videos of the published code (``evaluation.golden``: STCN DAVIS/YouTubeVOS
  protocols, RDE-VOS, SWEM in float64 as published) in float32 (TF32 off) against the parity tests'
  tolerances; then under AMP (CUDA fp16 autocast, ``segment_video(amp=True)``) and in float32 with
  TF32, reported as max/mean |dp| and argmax flips among the confident pixels (a NaN/Inf fails).
  ``--reference`` names the folder that must hold ``golden/<name>.npz``, ``<family>_state_dict_shapes.json``
  and ``synthetic_weights.py`` (default ../shared/reference: project reference data, not part of this
  repository; contents described in ``evaluation/golden.py``);
- eval: ``torchrun --nproc_per_node=1 eval_davis.py --amp`` and ``eval_youtube.py --amp`` end to end
  on generated 480p sets with a random STCN checkpoint (every mask written, metrics finite, frames/s);
- speed: 480x854 video, 1/2/5 objects, every memory policy, float32 and AMP (torch.cuda.synchronize
  around the timed frames, torch.cuda.max_memory_allocated);
- long video: every5 against LFU on 1000 frames (GPU memory along the video);
- training: ``torchrun --nproc_per_node=1 train.py`` (NCCL, DDP, AMP) for 20 iterations of stage 0,
  then the main stage (3) from its weights for 10 iterations and ``--resume`` to 20: it/s, peak memory.

On a CPU (``--device cpu``) the same steps run, with bfloat16 (``precision="bfloat16"``, the eval
scripts' ``--precision bfloat16``) standing in for AMP, gloo instead of NCCL and no TF32 rows;
``--quick`` shrinks every size (parity on the first two frames of three golden videos, one video
per eval script, two objects in the speed step). A step that
fails becomes a FAIL row and the others still run; the exit status is 1 when any row failed.
"""
import argparse
import contextlib
import csv
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from dataset.synthetic import SyntheticVideo, write_synthetic_davis, write_synthetic_youtube
from dataset.synthetic_training import write_synthetic_training_data
from evaluation import golden
from evaluation.benchmark import build_network_for
from evaluation.youtube import youtube_csv_paths
from inference import MEMORY_POLICIES
from model import build_network
from scripts import benchmark_inference, benchmark_memory

REPO = Path(__file__).resolve().parents[1]   # the entry points it launches (train.py, eval_*.py)
PASS, FAIL, INFO = "pass", "FAIL", "info"
FULL = {"golden": tuple(golden.GOLDEN_RUNS), "golden_frames": None, "eval_size": (480, 854), "eval_frames": 10,
        "eval_videos": 2,
        "speed_size": (480, 854), "speed_objects": (1, 2, 5), "speed_frames": 20, "warmup": 3,
        "long_frames": 1000, "long_sample": 100, "clip_frames": 50,
        "train": {"size": 384, "iterations": 20, "resume_at": 10, "data_size": (480, 854), "workers": 8}}
QUICK = {"golden": ("stcn_seed0", "rde_seed0", "swem_seed0"), "golden_frames": 2, "eval_size": (64, 96),
         "eval_frames": 3, "eval_videos": 1, "speed_size": (64, 96), "speed_objects": (2,), "speed_frames": 2,
         "warmup": 0, "long_frames": 6, "long_sample": 2, "clip_frames": 4,
         "train": {"size": 32, "iterations": 2, "resume_at": 1, "data_size": (64, 96), "workers": 0,
                   "batch_size": 1}}


class Report:
    """Rows of the one table: step, case, result, status, seconds."""

    def __init__(self):
        self.rows = []

    def add(self, step, case, result, status=INFO, seconds=None):
        self.rows.append((step, case, result, status, seconds))
        shown = "" if seconds is None else f" ({seconds:.1f} s)"
        print(f"[{status}] {step} | {case} | {result}{shown}", flush=True)

    @property
    def failed(self):
        return any(row[3] == FAIL for row in self.rows)

    def markdown(self, header):
        lines = ["# GPU check", ""] + [f"- {line}" for line in header] + [
            "", "| step | case | result | status | seconds |", "|---|---|---|---|---:|"]
        for step, case, result, status, seconds in self.rows:
            lines.append(f"| {step} | {case} | {result} | {status} | "
                         f"{'' if seconds is None else f'{seconds:.1f}'} |")
        return "\n".join(lines) + "\n"


def run_step(report, name, fn, *args):
    """``fn(report, *args)``; an exception becomes a FAIL row and the other steps still run."""
    start = time.perf_counter()
    try:
        fn(report, *args)
    except Exception as error:  # the report must name every failure, not stop at the first
        message = " ".join(str(error).split())[:300]
        report.add(name, "step failed", f"{type(error).__name__}: {message}", FAIL, time.perf_counter() - start)


# ----------------------------------------------------------------------------- environment
def environment(device, argv):
    lines = [f"command: `python scripts/gpu_check.py {' '.join(argv)}`",
             f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, host {platform.node()}",
             f"python {platform.python_version()}, torch {torch.__version__}, "
             f"torchvision {_version('torchvision')}, {os.cpu_count()} CPUs"]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        lines += [f"GPU: {props.name}, {props.total_memory / 2 ** 30:.0f} GiB, compute capability "
                  f"{props.major}.{props.minor}, {torch.cuda.device_count()} visible",
                  f"driver {_nvidia_smi('driver_version')}, CUDA runtime {torch.version.cuda}, cuDNN "
                  f"{torch.backends.cudnn.version()}, NCCL {_nccl_version()}"]
    else:
        lines.append(f"device: CPU ({torch.get_num_threads()} torch threads); bfloat16 stands in for AMP")
    return lines


def _nccl_version():
    version = torch.cuda.nccl.version()
    return ".".join(map(str, version)) if isinstance(version, tuple) else str(version)


def _version(module):
    try:
        return __import__(module).__version__
    except ImportError:
        return "not installed"


def _nvidia_smi(field):
    try:
        done = subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
        return done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# ----------------------------------------------------------------------------- precision
def mixed_precision(device):
    """segment_video's settings for mixed precision: AMP fp16 on CUDA; on a CPU its stand-in, bfloat16."""
    return {"amp": True} if device.type == "cuda" else {"precision": "bfloat16"}


def precision_name(device):
    return "AMP fp16" if device.type == "cuda" else "bfloat16"


def precision_modes(device):
    """(name, segment_video settings, context) of every precision the parity step runs."""
    modes = [("float32", {}, _tf32(False)), (precision_name(device), mixed_precision(device), _tf32(False))]
    if device.type == "cuda":
        modes.append(("float32 + TF32", {}, _tf32(True)))
    return modes


def _tf32(enabled):
    """TensorFloat-32 in cuDNN convolutions and CUDA matrix products on or off (PyTorch's defaults:
    on for cuDNN, off for matmul); no effect on a CPU."""
    @contextlib.contextmanager
    def context():
        saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = enabled
        try:
            yield
        finally:
            torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved
    return context


# ----------------------------------------------------------------------------- steps
def check_parity(report, device, sizes, reference):
    for name in sizes["golden"]:
        start = time.perf_counter()
        data = golden.load_golden(name, reference)
        network = golden.golden_network(name, data, reference, device=device)
        for mode, settings, context in precision_modes(device):
            run_network = network
            strict = mode == "float32"
            if strict and golden.GOLDEN_RUNS[name] == "swem":
                run_network = network.double()   # published in float64; compared as the parity test does
            with context():
                probs = golden.run_golden(name, data, run_network, frames=sizes["golden_frames"], **settings)
            run_network.float()
            result = golden.compare(probs, data)
            text = (f"max {result['max']:.1e}, mean {result['mean']:.1e}, argmax flips {result['flips']} of "
                    f"{result['confident']} confident pixels ({100 * result['flips'] / max(result['confident'], 1):.3f}%)")
            if strict:
                max_tol, mean_tol = golden.TOLERANCES[golden.GOLDEN_RUNS[name]]
                status = PASS if golden.within_tolerance(name, result) else FAIL
                text += f"; tolerance max {max_tol:.0e}, mean {mean_tol:.0e}, no flips"
                mode = "float64 (as published)" if golden.GOLDEN_RUNS[name] == "swem" else mode
            else:
                status = INFO if result["finite"] else FAIL
                text += "" if result["finite"] else "; NaN/Inf in the probabilities"
            frames = probs.shape[1]
            report.add("parity", f"{name} ({frames} frames), {mode}", text, status, time.perf_counter() - start)
            start = time.perf_counter()


def _run(cmd, cwd, env=None, timeout=600):
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"exit {done.returncode}: {' '.join(map(str, cmd[:6]))} ...: {tail}")
    return done.stdout


def _torchrun():
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]


def _fps(stdout):
    match = re.search(r"Processed (\d+) frames of (\d+) videos.*?: ([\d.]+) FPS(.*)", stdout)
    if not match:
        raise RuntimeError("no 'Processed ... FPS' line in the output")
    return f"{match.group(1)} frames, {match.group(3)} frames/s{match.group(4).rstrip()}"


def _finite_scores(path, columns=None):
    """Whether every number of the table's ``columns`` (default all) is finite."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    values = [float(row[c]) for row in rows for c in (columns or row)]
    return bool(values) and all(math.isfinite(v) for v in values)


def check_eval(report, device, sizes, work):
    height, width = sizes["eval_size"]
    checkpoint = work / "stcn_random.pth"
    torch.manual_seed(0)
    torch.save(build_network().state_dict(), checkpoint)
    mixed = ["--amp"] if device.type == "cuda" else ["--precision", "bfloat16"]   # --amp is CUDA-only
    label = " ".join(mixed)
    common = ["--model", checkpoint, "--device", device.type] + mixed

    start = time.perf_counter()
    davis = work / "davis"
    videos = sizes["eval_videos"]
    write_synthetic_davis(davis, seed=1, num_train=0, num_val=videos, num_test_dev=0, length=sizes["eval_frames"],
                          height=height, width=width, max_objects=3)
    out = work / "davis_out"
    stdout = _run(_torchrun() + [REPO / "eval_davis.py", "--davis_path", davis, "--output", out] + common, work)
    pngs = len(list(out.glob("*/*.png")))
    expected = videos * sizes["eval_frames"]
    finite = _finite_scores(out / "global_results-val.csv")
    report.add("eval", f"torchrun --nproc_per_node=1 eval_davis.py {label}, {videos} video(s) {height}x{width}",
               f"{_fps(stdout)}; {pngs}/{expected} masks; metrics finite: {finite}",
               PASS if pngs == expected and finite else FAIL, time.perf_counter() - start)

    start = time.perf_counter()
    youtube = work / "youtube"
    write_synthetic_youtube(youtube, seed=2, num_train=0, num_valid=videos, length=max(6, sizes["eval_frames"]),
                            height=height, width=width, max_objects=3)
    out = work / "youtube_out"
    stdout = _run([sys.executable, REPO / "eval_youtube.py", "--yv_path", youtube, "--output", out] + common, work)
    zipped = (out / "valid_submission.zip").exists()
    finite = _finite_scores(youtube_csv_paths(out, "valid")[0], ["Overall"])   # seen/unseen may be empty
    report.add("eval", f"eval_youtube.py {label}, {videos} video(s) {height}x{width}",
               f"{_fps(stdout)}; upload zip: {zipped}; overall score finite: {finite}",
               PASS if zipped and finite else FAIL, time.perf_counter() - start)


def _networks(device, policies):
    """{policy: seeded random network}, one per architecture (every5 and LFU share STCN). RDE's SAM
    starts as the identity, so the random recurrent embedding stays finite along the video."""
    built = {}
    for policy in policies:
        family = policy if policy in ("rde", "swem") else "stcn"
        if family not in built:
            built[family] = build_network_for(family).to(device)
            if family == "rde":
                built[family].mem_compress.zero_init_non_local()
    return {policy: built[policy if policy in ("rde", "swem") else "stcn"] for policy in policies}


def _policy_spec(policy, quick, mixed, device):
    """``policy[:options]`` for benchmark_inference.measure: bfloat16 on a CPU as the mixed precision;
    SWEM resizes every frame to 480x864 by default, the tiny quick frames keep their own size."""
    options = ["precision=bfloat16"] if mixed and device.type != "cuda" else []
    options += ["work_size=none"] if policy == "swem" and quick else []
    return policy + (":" + ",".join(options) if options else "")


def _clip(length, height, width, objects, seed=0):
    video = SyntheticVideo(seed=seed, height=height, width=width, num_objects=objects, length=length)
    return [video.frame(t)[0] for t in range(length)], video.labels(0)


def check_speed(report, device, sizes, quick):
    height, width = sizes["speed_size"]
    clips = {k: _clip(sizes["speed_frames"], height, width, k) for k in sizes["speed_objects"]}
    torch.backends.cudnn.benchmark = device.type == "cuda"   # as the eval scripts run
    for policy, network in _networks(device, sorted(MEMORY_POLICIES)).items():
        for objects, clip in clips.items():
            for mixed in (False, True):
                row = benchmark_inference.measure(_policy_spec(policy, quick, mixed, device), sizes["speed_frames"], height, width,
                              objects, warmup=sizes["warmup"], device=device, amp=mixed and device.type == "cuda",
                              network=network, clip=clip, malloc_tuning=False)
                memory = (f", peak GPU memory {row['peak_gpu_mib']:.0f} MiB" if row["peak_gpu_mib"] is not None
                          else f", peak RSS {row['peak_rss_mib']:.0f} MiB")
                precision = precision_name(device) if mixed else "float32"
                report.add("speed", f"{policy}, {objects} object(s), {precision}, {height}x{width}",
                           f"{row['fps']:.2f} frames/s over {row['frames']} frames{memory}", INFO, row["seconds"])


class LoopedClip:
    """A long video from a short rendered clip played forwards and backwards (rendering 1000 frames
    would take longer than segmenting them); frame(t) -> (rgb, labels) like SyntheticVideo."""

    def __init__(self, frames, first_labels):
        self.frames, self.first_labels = frames, first_labels

    def frame(self, t):
        period = 2 * len(self.frames) - 2
        i = t % period
        return self.frames[i if i < len(self.frames) else period - i], None

    def labels(self, t):
        if t != 0:
            raise ValueError("only frame 0's labels are given")
        return self.first_labels


def check_long_video(report, device, sizes):
    height, width = sizes["speed_size"]
    video = LoopedClip(*_clip(sizes["clip_frames"], height, width, 2, seed=7))
    amp = device.type == "cuda"   # as the published evaluation (--amp); float32 on a CPU
    networks = _networks(device, ("every5", "lfu"))
    for policy in ("every5", "lfu"):
        start = time.perf_counter()
        run, samples = benchmark_memory.measure(policy, sizes["long_frames"], height, width, 2, device=device, amp=amp,
                               network=networks[policy], video=video, sample_every=sizes["long_sample"])
        if device.type == "cuda":
            along = " / ".join(f"{s['gpu_mib']:.0f}" for s in samples)
            memory = f"GPU MiB at frames {samples[0]['frame']}..{samples[-1]['frame']}: {along}; peak {run['peak_gpu_mib']:.0f}"
        else:
            memory = f"peak RSS {run['peak_rss_mib']:.0f} MiB"
        report.add("long video", f"{policy}, {sizes['long_frames']} frames, 2 objects, {height}x{width}"
                   f"{', AMP' if amp else ''}",
                   f"{run['fps']:.2f} frames/s; memory features at the end {run['final_memory_features']}; {memory}",
                   INFO, time.perf_counter() - start)


def _train_speed(stdout):
    match = re.search(r"\[train\] (finished|stopped at iteration \d+); (.*?); training state", stdout)
    if not match:
        raise RuntimeError("no '[train] finished' line in the output")
    return match.group(2)


def check_training(report, device, sizes, work):
    cfg = sizes["train"]
    data = write_synthetic_training_data(work / "train_data", *cfg["data_size"], videos=3, frames=8, images=4,
                                         parts=("static", "davis", "youtube"))   # stage 0 and the main stage
    flags = ["--save_dir", work / "saves", "--no_pretrained", "--no_progress", "--device", device.type,
             "--size", cfg["size"], "--num_workers", cfg["workers"], "--iterations", cfg["iterations"]]
    if "batch_size" in cfg:
        flags += ["--batch_size", cfg["batch_size"]]
    amp = "AMP" if device.type == "cuda" else "float32 (AMP is CUDA-only)"
    backend = "NCCL" if device.type == "cuda" else "gloo"
    stage0 = flags + ["--stage", 0, "--id", "s0", "--static_root", data / "static"]
    main = flags + ["--stage", 3, "--id", "s3", "--davis_root", data / "DAVIS" / "2017", "--yv_root", data / "YouTube"]
    runs = [("stage 0", stage0),
            ("main stage (3)", main + ["--load_network", work / "saves" / "s0" / f"s0_{cfg['iterations']}.pth",
                                       "--stop_at", cfg["resume_at"]]),
            ("main stage (3), --resume", main + ["--resume"])]
    for case, run_flags in runs:
        start = time.perf_counter()
        stdout = _run(_torchrun() + [REPO / "train.py"] + run_flags, work)
        report.add("training", f"torchrun --nproc_per_node=1 ({backend}), {case}, {amp}, crop {cfg['size']}",
                   _train_speed(stdout), PASS, time.perf_counter() - start)


# flag value -> (report name, check)
STEPS = {"parity": ("parity", check_parity), "eval": ("eval", check_eval), "speed": ("speed", check_speed),
         "long_video": ("long video", check_long_video), "training": ("training", check_training)}


# ----------------------------------------------------------------------------- main
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: every step in about a minute on a CPU")
    parser.add_argument("--output", default="gpu_check.md", help="the Markdown report (default gpu_check.md)")
    parser.add_argument("--reference", default=str(golden.REFERENCE),
                        help="folder holding golden/ and the synthetic-weight files (default ../shared/reference)")
    parser.add_argument("--work_dir", default=None,
                        help="folder for generated data, checkpoints and outputs (default: a temporary one, removed)")
    parser.add_argument("--long_frames", type=int, default=None,
                        help=f"length of the every5-vs-LFU video (default {FULL['long_frames']}, quick "
                             f"{QUICK['long_frames']})")
    parser.add_argument("--steps", nargs="+", choices=list(STEPS), default=list(STEPS), metavar="STEP",
                        help=f"the checks to run, in this order (default all: {' '.join(STEPS)})")
    args = parser.parse_args(argv)
    try:
        args.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError as error:
        parser.error(f"--device: {error}")
    if args.device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is available (use --device cpu)")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    args = parse_args(argv)
    sizes = dict(QUICK if args.quick else FULL)
    if args.long_frames:
        sizes["long_frames"] = args.long_frames
    device = args.device
    header = environment(device, argv)
    print("\n".join(header), flush=True)
    report = Report()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="gpu_check."))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        inputs = {"parity": (device, sizes, args.reference), "eval": (device, sizes, work),
                  "speed": (device, sizes, args.quick), "long_video": (device, sizes),
                  "training": (device, sizes, work)}
        for step in args.steps:
            name, check = STEPS[step]
            run_step(report, name, check, *inputs[step])
    finally:
        if args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
    header.append(f"total wall time {time.perf_counter() - started:.0f} s; "
                  f"{'FAILED' if report.failed else 'every check passed'}")
    text = report.markdown(header)
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    temporary = output.with_name(f".{output.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, output)
    print(text)
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
