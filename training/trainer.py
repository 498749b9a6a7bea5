"""The shared training loop: datasets, DDP, AMP, lr schedule, logging, checkpoints, resuming.

What differs between model families (clip length, network, forward pass, losses, stage defaults)
comes from a ``TrainingRecipe``; see ``training/recipes/base.py``.
"""
import dataclasses
import json
import sys
import time
from pathlib import Path

import cv2
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from dataset.folders import DatasetFolderError
from dataset.sampler import TrainingBatchSampler
from dataset.static_dataset import StaticImageDataset, static_sets
from dataset.vos_dataset import bl30k_dataset, davis_train_dataset, main_training_dataset, youtube_train_dataset
from model.checkpoint import check_compatible, extract_state_dict, read_checkpoint
from training.checkpoint import load_training_state, restore_rng_state, save_training_state, save_weights
from training.config import config_to_dict
from training.logger import TrainLogger
from training.recipes import recipe_class
from util.distributed import barrier, init_distributed, shutdown_distributed
from util.leftovers import remove_dead_temporaries

__all__ = ["Trainer", "TrainingSetupError", "build_dataset", "lr_at", "training_step", "weights_path", "state_path"]


class TrainingSetupError(RuntimeError):
    """The run cannot start for a reason the user can fix (e.g. ImageNet weights unobtainable)."""


def lr_at(iteration, base_lr, steps, gamma):
    """Learning rate used at (0-based) ``iteration``: ``base_lr`` times ``gamma`` per step passed."""
    return base_lr * gamma ** sum(iteration >= s for s in steps)


def weights_path(cfg, iteration):
    return Path(cfg.run_dir) / f"{cfg.id}_{iteration}.pth"


def state_path(cfg):
    return Path(cfg.run_dir) / f"{cfg.id}_checkpoint.pth"


def build_dataset(cfg, recipe=None):
    """The stage's training set, from the published folder layouts. Samples get the recipe's
    ``sample_extras`` and video clips are drawn by its ``frame_sampler`` (``recipe``, a recipe or its
    class, defaults to the one ``cfg.model`` names)."""
    recipe = recipe or recipe_class(cfg.model)
    common = dict(size=cfg.size, num_frames=cfg.num_frames, max_objects=cfg.max_objects,
                  sample_extras=recipe.sample_extras)
    if cfg.data == "static":
        return StaticImageDataset(static_sets(cfg.static_root), **common)
    common["frame_sampler"] = recipe.frame_sampler
    if cfg.data == "bl30k":
        return bl30k_dataset(cfg.bl_root, **common)
    if cfg.data == "main":
        return main_training_dataset(cfg.davis_root, cfg.yv_root, davis_repeat=cfg.davis_repeat, **common)
    if cfg.data == "davis":
        return davis_train_dataset(cfg.davis_root, repeat=cfg.davis_repeat, **common)
    if cfg.data == "youtube":
        return youtube_train_dataset(cfg.yv_root, **common)
    raise ValueError(f"unknown training data {cfg.data!r} (static, bl30k, main, davis or youtube)")


def training_step(recipe, step_module, batch, iteration, optimizer, scaler, amp):
    """One optimisation step on a batch already on the device: forward, losses, backward, update."""
    device_type = batch["rgb"].device.type
    with torch.autocast(device_type=device_type, enabled=amp):
        outputs = step_module({k: v for k, v in batch.items() if torch.is_tensor(v)})
        losses = recipe.losses(outputs, batch, iteration)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(losses["total_loss"]).backward()
    scaler.step(optimizer)
    scaler.update()
    return losses, outputs


def _init_worker(worker_id):
    """Data workers: one thread each for OpenCV and torch (samples carry their own seeds)."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def _to_device(batch, device):
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}


class Trainer:
    """Runs one stage. ``dataset`` (optional) replaces the one the config names; ``recipe_type``
    (optional) a recipe class replacing the registered one of ``cfg.model``."""

    def __init__(self, cfg, dataset=None, recipe_type=None, record_history=False):
        # the recipe is built once from the config; the config then records every family option
        # (those not given at the stage's values), so config.json is what runs
        self.recipe = (recipe_type or recipe_class(cfg.model)).from_config(cfg)
        self.cfg = dataclasses.replace(cfg, family_options=self.recipe.options)
        self.dataset = dataset
        self.record_history = record_history
        self.history = []          # with record_history: total loss of every iteration of this process

    # ----------------------------------------------------------------- set-up
    def _build_network(self, device):
        cfg = self.cfg
        torch.manual_seed(cfg.seed)          # identical initialisation on every process
        try:
            network = self.recipe.build_network(cfg.single_object, cfg.pretrained)
        except Exception as error:
            if cfg.pretrained:
                hint = "" if "--no_pretrained" in str(error) else "; on an offline machine pass --no_pretrained"
                raise TrainingSetupError(f"could not build the network with ImageNet weights: {error}{hint}") from error
            raise
        if cfg.load_network and not cfg.resume:
            state_dict = extract_state_dict(read_checkpoint(cfg.load_network), cfg.load_network)
            state_dict = self.recipe.prepare_state_dict(state_dict, network)
            check_compatible(network, state_dict, cfg.load_network,
                             hint="--load_network expects weights of the same model family")
            network.load_state_dict(state_dict, strict=True)
        return network.to(device)

    def _optimisation(self, network):
        cfg = self.cfg
        optimizer = self.recipe.make_optimizer(network.parameters(), cfg)
        scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(cfg.steps), cfg.gamma)
        return optimizer, scheduler

    def _loader(self, dataset, context, start_iteration, end_iteration):
        cfg = self.cfg
        curriculum = self.recipe.defaults.curriculum

        def skip_at(iteration):
            return curriculum.max_skip(iteration, cfg.iterations) if curriculum else None

        sampler = TrainingBatchSampler(len(dataset), cfg.batch_size, seed=cfg.seed, rank=context.rank,
                                       world_size=context.world_size, start_iteration=start_iteration,
                                       iterations=end_iteration, skip_at=skip_at)
        return DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.num_workers,
                          pin_memory=context.device.type == "cuda", persistent_workers=False,
                          worker_init_fn=_init_worker)

    def _announce(self, context, start_iteration):
        cfg = self.cfg
        run_dir = Path(cfg.run_dir)
        if context.is_main:
            run_dir.mkdir(parents=True, exist_ok=True)
            text = json.dumps({**config_to_dict(cfg), "world_size": context.world_size}, indent=2, sort_keys=True)
            print(f"[train] resolved config (batch_size is per process; {context.world_size} process(es), "
                  f"{cfg.batch_size * context.world_size} clips per iteration in total):\n{text}", flush=True)
            (run_dir / "config.json").write_text(text + "\n")
            if start_iteration:
                print(f"[train] resuming {cfg.resume} at iteration {start_iteration}", flush=True)

    # ----------------------------------------------------------------- loop
    def run(self):
        cfg = self.cfg
        context = init_distributed(cfg.device)
        try:
            return self._run(context)
        finally:
            shutdown_distributed()

    def _run(self, context):
        cfg = self.cfg
        device = context.device
        if state_path(cfg).exists() and not cfg.resume:
            raise FileExistsError(f"run folder {cfg.run_dir} already holds a training state; pass --resume to "
                                  f"continue it or choose another --id")
        torch.backends.cudnn.benchmark = cfg.cudnn_benchmark
        amp = cfg.amp and device.type == "cuda"
        state = load_training_state(cfg.resume) if cfg.resume else None
        if state is not None:
            _check_resume_point(cfg, int(state["iteration"]))
        if context.is_main:
            remove_dead_temporaries(cfg.run_dir)  # .*.tmp<pid> files of a killed run

        # datasets first: bad folders fail before the slow network build
        dataset = self.dataset if self.dataset is not None else build_dataset(cfg, self.recipe)
        network = self._build_network(device)
        optimizer, scheduler = self._optimisation(network)
        scaler = torch.amp.GradScaler("cuda", enabled=amp)
        start = 0
        if cfg.resume:
            network.load_state_dict(extract_state_dict(state["network"], cfg.resume), strict=True)
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            start = int(state["iteration"])
            # the state holds the main process's RNGs; data sampling never depends on them (every
            # sample carries its own seed), so the other processes simply reseed
            if "rng" in state and context.is_main:
                restore_rng_state(state["rng"])
            elif context.rank:
                torch.manual_seed(cfg.seed + 1000 * context.rank + start)
            _warn_changed(state.get("config", {}), config_to_dict(cfg))
        else:
            torch.manual_seed(cfg.seed + 1000 * context.rank)
        end = cfg.stop_at if cfg.stop_at is not None else cfg.iterations
        self._announce(context, start)

        self.recipe.set_train_mode(network)
        if cfg.batch_norm == "train":
            train_batch_norm(network)
        step_module = self.recipe.training_module(network).to(device)
        if context.distributed:
            step_module = DistributedDataParallel(
                step_module, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=self.recipe.find_unused_parameters)
        loader = self._loader(dataset, context, start, end)
        logger = TrainLogger(cfg.run_dir, context, start, cfg.iterations, enabled_bar=cfg.progress_bar)
        if start == 0:
            logger.log_config(config_to_dict(cfg))

        iteration = start
        started = time.perf_counter()
        try:
            for batch in _named_data_errors(loader):
                batch = _to_device(batch, device)
                lr = optimizer.param_groups[0]["lr"]
                losses, outputs = training_step(self.recipe, step_module, batch, iteration, optimizer,
                                                scaler, amp)
                scheduler.step()
                iteration += 1
                if self.record_history:
                    self.history.append(float(losses["total_loss"].detach()))
                logger.step(losses)
                if iteration % cfg.log_every == 0 or iteration == end:
                    logger.log_scalars(iteration, lr)
                if context.is_main and iteration % cfg.log_image_every == 0:
                    logger.log_images(iteration, batch, outputs)
                if context.is_main and iteration % cfg.save_every == 0:
                    save_weights(network, weights_path(cfg, iteration))
                if context.is_main and iteration % cfg.checkpoint_every == 0 and iteration != end:
                    save_training_state(state_path(cfg), network, optimizer, scheduler, scaler, iteration,
                                        config_to_dict(cfg))
        except DatasetFolderError as error:
            if context.is_main and iteration > start:
                save_training_state(state_path(cfg), network, optimizer, scheduler, scaler, iteration,
                                    config_to_dict(cfg))
                raise DatasetFolderError(f"{error}; stopped at iteration {iteration}, training state saved to "
                                         f"{state_path(cfg)} (fix the file, then --resume)") from None
            raise DatasetFolderError(f"{error}; stopped at iteration {iteration}, progress since the last saved "
                                     f"training state is lost") from None
        finally:
            logger.close()
        if context.is_main:
            if iteration == cfg.iterations and iteration % cfg.save_every:
                save_weights(network, weights_path(cfg, iteration))
            save_training_state(state_path(cfg), network, optimizer, scheduler, scaler, iteration,
                                config_to_dict(cfg))
            done = "finished" if iteration == cfg.iterations else f"stopped at iteration {iteration}"
            print(f"[train] {done}; {_speed(iteration - start, time.perf_counter() - started, device)}; "
                  f"training state {state_path(cfg)}", flush=True)
        barrier(context)
        return self.history


def train_batch_norm(network):
    """Put every BatchNorm of ``network`` in train mode (``train.py --bn train``): batch statistics in
    the forward pass, running averages updated for evaluation. The recipes freeze them (published)."""
    for module in network.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.train()
    return network


def _speed(iterations, seconds, device):
    """"N iterations in S s (X it/s)" plus the peak GPU memory of this process on CUDA."""
    line = f"{iterations} iterations in {seconds:.1f} s ({iterations / max(seconds, 1e-9):.2f} it/s)"
    if device.type == "cuda":
        line += f", peak GPU memory {torch.cuda.max_memory_allocated(device) / 2 ** 20:.0f} MiB"
    return line


def _check_resume_point(cfg, saved_iteration):
    if saved_iteration > cfg.iterations:
        raise TrainingSetupError(f"--resume {cfg.resume} is at iteration {saved_iteration}, beyond --iterations "
                                 f"{cfg.iterations}; raise --iterations or start a new run")
    if cfg.stop_at is not None and cfg.stop_at <= saved_iteration:
        raise TrainingSetupError(f"--stop_at {cfg.stop_at} is not after the saved iteration {saved_iteration} "
                                 f"of --resume {cfg.resume}")


def _named_data_errors(loader):
    """Batches of ``loader``; a bad file in a worker process surfaces as one DatasetFolderError line
    (DataLoader re-raises it with the worker's traceback in the message)."""
    try:
        yield from loader
    except DatasetFolderError as error:
        last = str(error).strip().splitlines()[-1] if str(error).strip() else ""
        raise DatasetFolderError(last.split("DatasetFolderError: ", 1)[-1]) from None


def _warn_changed(saved, current):
    keys = ("model", "stage", "iterations", "batch_size", "steps", "lr", "seed", "size", "batch_norm")
    changed = {k: (saved.get(k), current.get(k)) for k in keys
               if k in saved and json.dumps(saved[k]) != json.dumps(current[k])}
    if "family_options" in saved:   # states saved before family options existed have none
        before, now = saved["family_options"], current.get("family_options", {})
        changed.update({f"family_options.{k}": (before.get(k), now.get(k)) for k in sorted({*before, *now})
                        if json.dumps(before.get(k)) != json.dumps(now.get(k))})
    if changed:
        print(f"[train] warning: resuming with changed settings {changed} (saved, now)", file=sys.stderr)
