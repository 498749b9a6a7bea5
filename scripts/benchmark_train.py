#!/usr/bin/env python
"""Training-step throughput and peak memory, as a table.

    python scripts/benchmark_train.py --stage 0 3 --batch_size 4 8 --size 384          # GPU-sized
    python scripts/benchmark_train.py --stage 0 3 --batch_size 1 --size 64 --iterations 3 --warmup 1  # CPU-sized

A progress bar per row shows the iterations (a paper-sized row takes minutes on a CPU).

Each row runs the real training step of ``train.py`` (recipe forward, losses, backward, optimizer
update; AMP on CUDA unless --no_amp) on synthetic clips from ``dataset.synthetic`` held on the
device, so data loading is not measured. Batch size is per process. Peak memory: CUDA
``max_memory_allocated`` on a GPU, the process's peak resident set size on the CPU.
"""
import argparse
import resource
import time
import types

import numpy as np
import torch
from tqdm import tqdm

from dataset.clip import with_extras
from dataset.synthetic import SyntheticVideo
from model.normalization import normalize_image
from training.recipes import all_recipes, get_recipe
from training.trainer import training_step


def synthetic_batch(recipe, batch_size, num_frames, size, single_object, device, seed=0):
    """A batch as the trainer's data loader gives it: ``batch_size`` seeded synthetic clips with the
    recipe's per-sample extras, on ``device``."""
    samples = []
    for b in range(batch_size):
        video = SyntheticVideo(seed=seed + b, height=size, width=size, num_objects=1 if single_object else 2,
                               length=num_frames)
        frames = [video.frame(t) for t in range(num_frames)]
        rgb = torch.from_numpy(np.stack([f[0] for f in frames])).permute(0, 3, 1, 2).float().div(255)
        sample = {"rgb": normalize_image(rgb), "labels": torch.from_numpy(np.stack([f[1] for f in frames])).long(),
                  "selector": torch.tensor([1.0, 0.0 if single_object else 1.0])}
        samples.append(with_extras(sample, np.random.default_rng(seed + b), recipe.sample_extras))
    return {key: torch.stack([s[key] for s in samples]).to(device) for key in samples[0]}


def peak_memory_mib(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB


def measure(model, stage, batch_size, size, iterations, warmup, device, amp, progress=True):
    recipe = get_recipe(model, stage)   # the family's own options at the stage's values
    defaults = recipe.defaults
    torch.manual_seed(0)
    network = recipe.build_network(defaults.single_object, pretrained=False).to(device)
    recipe.set_train_mode(network)
    step_module = recipe.training_module(network)
    settings = types.SimpleNamespace(stage=stage, family_options={}, optimizer=defaults.optimizer, lr=defaults.lr,
                                     weight_decay=defaults.weight_decay)
    optimizer = recipe.make_optimizer(network.parameters(), settings)
    use_amp = amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    batch = synthetic_batch(recipe, batch_size, defaults.num_frames or recipe.num_frames, size, defaults.single_object,
                            device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    # one bar per row: on a CPU a paper-sized row takes minutes before its line is printed
    bar = tqdm(total=warmup + iterations, desc=f"{model} stage {stage} batch {batch_size} size {size}",
               unit="it", disable=not progress, leave=False)
    for it in range(warmup):
        training_step(recipe, step_module, batch, it, optimizer, scaler, use_amp)
        bar.update()
    sync()
    start = time.perf_counter()
    for it in range(iterations):
        losses, _ = training_step(recipe, step_module, batch, it, optimizer, scaler, use_amp)
        bar.update()
    sync()
    seconds = time.perf_counter() - start
    bar.close()
    return {"model": model, "stage": stage, "batch": batch_size, "size": size, "amp": use_amp,
            "it/s": iterations / seconds, "clips/s": iterations * batch_size / seconds,
            "peak MiB": peak_memory_mib(device), "loss": float(losses["total_loss"].detach())}


def format_table(rows):
    columns = ["model", "stage", "batch", "size", "amp", "it/s", "clips/s", "peak MiB"]
    cells = [[f"{r[c]:.2f}" if isinstance(r[c], float) and c != "peak MiB" else
              (f"{r[c]:.0f}" if c == "peak MiB" else str(r[c])) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    body = ["| " + " | ".join(v.ljust(w) for v, w in zip(row, widths)) + " |" for row in cells]
    return "\n".join([line, rule] + body)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="stcn", choices=sorted(all_recipes()))
    parser.add_argument("--stage", type=int, nargs="+", default=[3], help="stages to measure (default 3)")
    parser.add_argument("--batch_size", type=int, nargs="+", default=[4],
                        help="clips per process (STCN: 8 for stage 0, 4 otherwise)")
    parser.add_argument("--size", type=int, nargs="+", default=[384], help="crop size (paper: 384)")
    parser.add_argument("--iterations", type=int, default=20, help="timed iterations per row")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--no_amp", action="store_true", help="full precision on CUDA (AMP is the default)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar per row")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    rows = []
    for stage in args.stage:
        for batch_size in args.batch_size:
            for size in args.size:
                if size % 16:
                    parser.error(f"--size {size} must be a multiple of 16")
                rows.append(measure(args.model, stage, batch_size, size, args.iterations, args.warmup, device,
                                    not args.no_amp, progress=not args.no_progress))
                print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"\n{name}, torch {torch.__version__}, batch size per process\n{format_table(rows)}")
    return rows


if __name__ == "__main__":
    main()
