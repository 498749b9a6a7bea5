"""Command line and resolved settings of ``train.py``.

Flags left unset take the model family's stage defaults (``training/recipes/base.py``); the resolved
``TrainConfig`` is printed and saved as ``config.json`` in the run folder. A family's own flags
(e.g. RDE's loss weights) are resolved by its recipe into ``family_options``.
"""
import argparse
import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Tuple

from training.recipes import all_recipes, recipe_class
from util.cli import ArgumentParser

__all__ = ["TrainConfig", "build_parser", "resolve_config", "config_to_dict"]

NETWORK_STRIDE = 16
BATCH_NORM_MODES = ("frozen", "train")


@dataclass(frozen=True)
class TrainConfig:
    model: str
    stage: int
    id: str
    data: str
    iterations: int
    batch_size: int
    steps: Tuple[int, ...]
    lr: float
    weight_decay: float
    gamma: float
    optimizer: str
    single_object: bool
    num_frames: int
    max_objects: int
    size: int
    curriculum: Optional[dict]
    amp: bool
    device: Optional[str]
    seed: int
    pretrained: bool
    load_network: Optional[str]
    resume: Optional[str]
    run_dir: str
    num_workers: int
    save_every: int
    checkpoint_every: int
    log_every: int
    log_image_every: int
    stop_at: Optional[int]
    progress_bar: bool
    cudnn_benchmark: bool
    static_root: str
    bl_root: str
    davis_root: str
    yv_root: str
    davis_repeat: int
    batch_norm: str = "frozen"     # "frozen" (published: running statistics) or "train" (batch statistics)
    family_options: dict = field(default_factory=dict)   # the family's own settings (recipe.options)


def build_parser():
    p = ArgumentParser(
        description="Train STCN (and relatives) in stages: 0 static images -> [1 BL30K] -> 2/3 main "
                    "(DAVIS 2017 + YouTubeVOS). Launch with `torchrun --nproc_per_node=N train.py ...`; "
                    "--batch_size is PER PROCESS (the paper's 16/8 total = 8/4 per process on 2 GPUs).")
    g = p.add_argument_group("stage")
    g.add_argument("--model", default="stcn", choices=sorted(all_recipes()), help="model family (default stcn)")
    g.add_argument("--stage", type=int, default=0, choices=[0, 1, 2, 3],
                   help="0: static images (single object); 1: BL30K; 2: main training after BL30K "
                        "(300k iterations); 3: main training without BL30K (150k)")
    g.add_argument("--id", default=None, help="run name; the run folder is SAVE_DIR/ID (default MODEL_sSTAGE)")
    g.add_argument("--save_dir", default="saves", help="parent folder of run folders (default saves)")
    g = p.add_argument_group("optimisation (unset = the stage's paper value)")
    g.add_argument("--iterations", type=int, help="total iterations (STCN: 300k, 500k, 300k, 150k for stages 0-3)")
    g.add_argument("--batch_size", type=int,
                   help="clips per PROCESS per iteration (STCN: 8 for stage 0, 4 otherwise; paper totals "
                        "16 and 8 on 2 GPUs)")
    g.add_argument("--lr", type=float, help="Adam base learning rate (STCN: 1e-5 in every stage)")
    g.add_argument("--steps", type=int, nargs="*",
                   help="iterations where lr is multiplied by --gamma (STCN: 150k, 400k, 250k, 125k; the "
                        "paper's appendix gives 450k for BL30K)")
    g.add_argument("--gamma", type=float, help="lr decay factor at each step (STCN: 0.1)")
    g.add_argument("--weight_decay", type=float, help="L2 weight decay (STCN: 1e-7)")
    g.add_argument("--no_amp", action="store_true",
                   help="disable automatic mixed precision (on by default on CUDA; never used on CPU)")
    g.add_argument("--seed", type=int, default=14159, help="seed of network init and data sampling")
    g.add_argument("--bn", choices=BATCH_NORM_MODES, default="frozen",
                   help="BatchNorm layers while training: 'frozen' (published; eval mode, the statistics "
                        "they were built or loaded with, meant for ImageNet weights) or 'train' (batch "
                        "statistics, running averages updated; needed to train from scratch with "
                        "--no_pretrained, whose initial statistics are meaningless)")
    g = p.add_argument_group("initialisation and resuming")
    g.add_argument("--no_pretrained", action="store_true",
                   help="do not load torchvision ImageNet weights into the encoders (offline machines)")
    g.add_argument("--load_network", help="start from an earlier stage's weights (weights-only file or "
                                          "training state; a stage-0 file gains its 5th value-input "
                                          "channel by orthogonal init)")
    g.add_argument("--resume", nargs="?", const="auto",
                   help="continue a run from its training state (default: SAVE_DIR/ID/ID_checkpoint.pth)")
    g.add_argument("--load_model", dest="resume", help="published name of --resume PATH")
    g.add_argument("--stop_at", type=int,
                   help="leave after this iteration, saving the training state (for job time limits)")
    g = p.add_argument_group("data")
    g.add_argument("--static_root", default="../static", help="static image sets (stage 0)")
    g.add_argument("--bl_root", default="../BL30K", help="BL30K (stage 1)")
    g.add_argument("--davis_root", default="../DAVIS/2017", help="DAVIS 2017 (stages 2, 3)")
    g.add_argument("--yv_root", default="../YouTube", help="YouTubeVOS with train_480p/ (stages 2, 3)")
    g.add_argument("--davis_repeat", type=int, default=5, help="DAVIS videos per YouTubeVOS video pass (5)")
    g.add_argument("--size", type=int, default=384, help="square crop size, a multiple of 16 (paper: 384)")
    g.add_argument("--num_workers", type=int, default=8, help="data-loading workers per process")
    g = p.add_argument_group("logging and checkpoints")
    g.add_argument("--log_every", type=int, default=100, help="TensorBoard scalars every N iterations")
    g.add_argument("--log_image_every", type=int, default=1000, help="TensorBoard image grids every N iterations")
    g.add_argument("--save_every", type=int, default=50_000,
                   help="weights-only file ID_ITER.pth every N iterations (and at the end)")
    g.add_argument("--checkpoint_every", type=int, default=5_000,
                   help="resumable training state ID_checkpoint.pth every N iterations (and at the end)")
    g.add_argument("--no_progress", action="store_true", help="no progress bar")
    g.add_argument("--device", choices=["cuda", "cpu"], help="default: CUDA when available")
    g.add_argument("--benchmark", action="store_true", help="cudnn.benchmark (published flag)")
    g.add_argument("--debug", action="store_true", help="log scalars and images every iteration")
    g.add_argument("--local_rank", type=int, help=argparse.SUPPRESS)   # legacy launcher; torchrun uses env
    for family in all_recipes().values():   # family-specific flags (e.g. RDE loss weights)
        family.add_arguments(p)
    return p


def resolve_config(args):
    """Fill unset flags from the recipe's stage defaults and check the result."""
    recipe = recipe_class(args.model)
    d = recipe.stage_defaults(args.stage)
    family_options = recipe.resolve_options(args.stage, recipe.options_from_args(args))
    run_id = args.id or f"{args.model}_s{args.stage}"
    run_dir = Path(args.save_dir) / run_id
    iterations = args.iterations if args.iterations is not None else d.iterations
    steps = tuple(args.steps) if args.steps is not None else d.steps
    resume = args.resume
    if resume == "auto":
        resume = str(run_dir / f"{run_id}_checkpoint.pth")
    cfg = TrainConfig(
        model=args.model, stage=args.stage, id=run_id, data=d.data, iterations=iterations,
        batch_size=args.batch_size if args.batch_size is not None else d.batch_size, steps=steps,
        lr=args.lr if args.lr is not None else d.lr,
        weight_decay=args.weight_decay if args.weight_decay is not None else d.weight_decay,
        gamma=args.gamma if args.gamma is not None else d.gamma, optimizer=d.optimizer,
        single_object=d.single_object, num_frames=d.num_frames or recipe.num_frames, max_objects=recipe.max_objects,
        size=args.size, curriculum=_describe(d.curriculum),
        amp=not args.no_amp, device=args.device, seed=args.seed,
        pretrained=not args.no_pretrained and not args.load_network and not resume,
        load_network=args.load_network, resume=resume, run_dir=str(run_dir),
        num_workers=args.num_workers, save_every=args.save_every, checkpoint_every=args.checkpoint_every,
        log_every=1 if args.debug else args.log_every, log_image_every=1 if args.debug else args.log_image_every,
        stop_at=args.stop_at, progress_bar=not args.no_progress, cudnn_benchmark=args.benchmark,
        static_root=args.static_root, bl_root=args.bl_root, davis_root=args.davis_root, yv_root=args.yv_root,
        davis_repeat=args.davis_repeat, batch_norm=args.bn, family_options=family_options)
    _check(cfg)
    return cfg


def _describe(curriculum):
    """The curriculum as recorded in config.json (the trainer uses the recipe's object itself)."""
    if curriculum is None:
        return None
    if dataclasses.is_dataclass(curriculum):
        return {"kind": type(curriculum).__name__, **dataclasses.asdict(curriculum)}
    return {"kind": type(curriculum).__name__, "repr": repr(curriculum)}


def _check(cfg):
    problems = []
    if cfg.size % NETWORK_STRIDE:
        problems.append(f"--size {cfg.size} must be a multiple of {NETWORK_STRIDE}")
    if cfg.iterations < 1 or cfg.batch_size < 1:
        problems.append("--iterations and --batch_size must be positive")
    if cfg.stop_at is not None and not 0 < cfg.stop_at <= cfg.iterations:
        problems.append(f"--stop_at {cfg.stop_at} must lie in 1..{cfg.iterations}")
    if min(cfg.log_every, cfg.log_image_every, cfg.save_every, cfg.checkpoint_every) < 1:
        problems.append("logging and saving intervals must be positive")
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        problems.append(f"--lr must be a positive number, got {cfg.lr}")
    if cfg.num_workers < 0:
        problems.append(f"--num_workers must be >= 0, got {cfg.num_workers}")
    if any(step < 1 for step in cfg.steps) or list(cfg.steps) != sorted(cfg.steps):
        problems.append(f"--steps must be positive iterations in increasing order, got {list(cfg.steps)}")
    if not (math.isfinite(cfg.gamma) and cfg.gamma > 0) or cfg.weight_decay < 0:
        problems.append("--gamma must be positive and --weight_decay >= 0")
    if problems:
        raise ValueError("; ".join(problems))


def config_to_dict(cfg):
    return dataclasses.asdict(cfg)


def config_json(cfg):
    return json.dumps(config_to_dict(cfg), indent=2, sort_keys=True)
