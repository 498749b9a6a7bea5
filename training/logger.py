"""Training logs: a progress bar and TensorBoard scalars/images on the main process.

Scalars are averaged over the logging interval and over all processes (the reduction is a
collective, so every process calls ``log_scalars`` at the same iterations); images come from the
main process's batch.
"""
import json
import time

import numpy as np
import torch
from tqdm import tqdm

from model.normalization import denormalize_image
from util.distributed import all_reduce_mean
from util.palette import davis_palette

__all__ = ["TrainLogger", "ScalarAverager", "clip_grid"]


class ScalarAverager:
    """Running sums of named scalars over one logging interval."""

    def __init__(self):
        self.sums, self.count = {}, 0

    def add(self, values):
        for name, value in values.items():   # tensors stay on their device: no sync per iteration
            value = value.detach().float() if torch.is_tensor(value) else float(value)
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.count += 1

    def means(self):
        return {k: float(v) / max(self.count, 1) for k, v in self.sums.items()}

    def reset(self):
        self.sums, self.count = {}, 0


def _palette_colours(labels):
    colours = torch.from_numpy(davis_palette().astype(np.float32) / 255.0)
    return colours[labels.long().clamp(0, 255)].permute(2, 0, 1)


def clip_grid(rgb, labels, probs):
    """3 rows x T columns for one clip: frames, ground truth, prediction (frame 0 shows its GT).

    rgb: T x 3 x H x W (normalised), labels: T x H x W, probs: list of (1+K) x H x W for frames 1..T-1.
    """
    rgb = rgb.detach().float().cpu()
    labels = labels.detach().cpu()
    frames = denormalize_image(rgb).clamp(0, 1)
    truth = [_palette_colours(labels[t]) for t in range(len(labels))]
    predicted = [truth[0]] + [_palette_colours(p.detach().float().cpu().argmax(0)) for p in probs]
    return tile_grid(list(frames) + truth + predicted, columns=len(labels))


def tile_grid(tiles, columns, padding=2):
    """Equal-sized C x H x W ``tiles`` row by row on a black canvas, ``padding`` pixels around each."""
    channels, height, width = tiles[0].shape
    rows = -(-len(tiles) // columns)
    canvas = torch.zeros(channels, rows * (height + padding) + padding, columns * (width + padding) + padding)
    for index, tile in enumerate(tiles):
        top = (index // columns) * (height + padding) + padding
        left = (index % columns) * (width + padding) + padding
        canvas[:, top:top + height, left:left + width] = tile
    return canvas


class TrainLogger:
    """Progress bar + TensorBoard writer (main process only) + interval averages of scalars."""

    def __init__(self, run_dir, context, start_iteration, iterations, enabled_bar=True):
        self.context = context
        self.averager = ScalarAverager()
        self.writer = None
        self.bar = None
        self._last_time = time.perf_counter()
        self._last_iteration = start_iteration
        if context.is_main:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(log_dir=str(run_dir))
            self.bar = tqdm(total=iterations, initial=start_iteration, disable=not enabled_bar,
                            dynamic_ncols=True, desc="train")

    def step(self, values):
        self.averager.add(values)
        if self.bar is not None:
            self.bar.update(1)

    def log_scalars(self, iteration, lr):
        """Average the interval over all processes, write it, and show it on the bar."""
        means = self.averager.means()
        names = sorted(means)
        # on the process's device: NCCL reduces CUDA tensors only
        values = torch.tensor([means[n] for n in names], dtype=torch.float64, device=self.context.device)
        reduced = all_reduce_mean(values, self.context)
        means = dict(zip(names, reduced.tolist()))
        now = time.perf_counter()
        its = (iteration - self._last_iteration) / max(now - self._last_time, 1e-9)
        self._last_time, self._last_iteration = now, iteration
        self.averager.reset()
        if self.writer is not None:
            for name, value in means.items():
                self.writer.add_scalar(f"train/{name}", value, iteration)
            self.writer.add_scalar("train/lr", lr, iteration)
            self.writer.add_scalar("train/iterations_per_second", its, iteration)
            self.bar.set_postfix(loss=f"{means.get('total_loss', float('nan')):.4f}",
                                 iou=f"{means.get('iou', float('nan')):.3f}", lr=f"{lr:.1e}")
        return means

    def log_images(self, iteration, batch, outputs):
        if self.writer is None:
            return
        grid = clip_grid(batch["rgb"][0], batch["labels"][0], [p[0] for p in outputs["probs"]])
        self.writer.add_image("train/clip", grid, iteration)

    def log_text(self, tag, text):
        if self.writer is not None:
            self.writer.add_text(tag, text)

    def log_config(self, config):
        self.log_text("config", "```\n" + json.dumps(config, indent=2, default=str) + "\n```")

    def close(self):
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()
