"""What a model family brings to the shared trainer, and the one registry of families.

The trainer (``training.trainer``) owns everything the families share: datasets and sampling, DDP,
AMP, the lr schedule, logging and checkpoints. A recipe owns what differs between STCN, RDE and
SWEM: the stage defaults (batch, iterations, lr steps, optimizer), the clip length and frame
sampler, anything a sample needs beyond frames and labels, how the network is built and initialised
from an earlier stage, and the forward pass with its losses.

A recipe is built once per run from the resolved config: ``recipe_class(cfg.model).from_config(cfg)``
(stage + the family's options as recorded in config.json). To add a family, subclass
``TrainingRecipe``, decorate it with ``@register_recipe`` and import its module in
``training/recipes/__init__.py``; ``train.py --model NAME`` then picks it.
"""
from dataclasses import dataclass, field
from typing import Optional, Tuple

import torch
import torch.nn as nn

from dataset.curriculum import SkipCurriculum
from model.clip_forward import MULTI_OBJECT_SLOTS
from model.losses import per_object_iou

__all__ = ["StageDefaults", "TrainingRecipe", "TrainingStep", "RECIPES", "register_recipe"]

RECIPES = {}   # name -> recipe class, filled by @register_recipe


def register_recipe(cls):
    """Class decorator: make ``train.py --model cls.name`` use this recipe."""
    if cls.name in RECIPES and RECIPES[cls.name] is not cls:
        raise ValueError(f"a training recipe named {cls.name!r} is already registered")
    RECIPES[cls.name] = cls
    return cls


@dataclass(frozen=True)
class StageDefaults:
    """Per-stage settings a recipe proposes; every field can be overridden on the command line."""

    data: str                         # "static", "bl30k", "main" (DAVIS x5 + YouTubeVOS), "davis", "youtube"
    batch_size: int                   # per process
    iterations: int
    steps: Tuple[int, ...]            # lr x gamma at each of these iterations
    single_object: bool = False
    lr: float = 1e-5
    weight_decay: float = 1e-7
    gamma: float = 0.1
    optimizer: str = "adam"
    num_frames: Optional[int] = None  # clip length T (frames 1..T-1 supervised); None: the recipe's num_frames
    curriculum: Optional[SkipCurriculum] = None   # any object with max_skip(iteration, total)
    extra: dict = field(default_factory=dict)


class TrainingStep(nn.Module):
    """The module DDP wraps (the network is its only child): runs a family's training forward on a
    batch. ``forward(network, batch, selector)``: selector is the batch's (B, K) real object slots,
    or None for a single-object network."""

    def __init__(self, network, forward):
        super().__init__()
        self.network = network
        self.family_forward = forward

    def forward(self, batch):
        selector = None if self.network.single_object else batch["selector"]
        return self.family_forward(self.network, batch, selector)


class TrainingRecipe:
    """A model family's training step, built for one stage.

    Class attributes: ``STAGES`` {stage: StageDefaults}; ``num_frames``: clip length unless a stage
    names its own; ``frame_sampler``: how video clips pick their frames, ``(rng, length, num_frames,
    max_skip) -> indices`` (None: STCN's); ``sample_extras``: None or ``(sample, rng) -> dict`` of
    further per-sample tensors, drawn in the dataset from the sample's own RNG; ``OPTION_NAMES``:
    the family's own settings (flags added by ``add_arguments``), kept in config.json.
    """

    name = "base"
    STAGES = {}
    OPTION_NAMES = ()
    num_frames = 3
    frame_sampler = None
    sample_extras = None
    max_objects = MULTI_OBJECT_SLOTS   # object slots of a multi-object clip (the forwards use the same count)
    find_unused_parameters = False

    def __init__(self, stage, options=None):
        self.stage = stage
        self.defaults = self.stage_defaults(stage)
        self.options = self.resolve_options(stage, options or {})

    @classmethod
    def from_config(cls, cfg):
        return cls(cfg.stage, cfg.family_options)

    @classmethod
    def stage_defaults(cls, stage):
        if stage not in cls.STAGES:
            raise ValueError(f"{cls.name.upper()} has stages {min(cls.STAGES)}-{max(cls.STAGES)}, not {stage}")
        return cls.STAGES[stage]

    @staticmethod
    def add_arguments(parser):
        """The family's own flags (none by default)."""

    @classmethod
    def options_from_args(cls, args):
        """The family's options given on the command line (unset flags are left out)."""
        return {name: getattr(args, name) for name in cls.OPTION_NAMES if getattr(args, name, None) is not None}

    @classmethod
    def resolve_options(cls, stage, given):
        """Every family option for ``stage``: ``given`` ones, the stage's values for the rest (JSON values)."""
        if given:
            raise ValueError(f"model {cls.name!r} has no family options, got {sorted(given)}")
        return {}

    def build_network(self, single_object, pretrained):
        raise NotImplementedError

    def set_train_mode(self, network):
        network.train()
        return network

    def prepare_state_dict(self, state_dict, network):
        """Adapt an earlier stage's weights to ``network`` before a strict load."""
        return state_dict

    def make_optimizer(self, parameters, config):
        if config.optimizer == "adam":
            return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)
        if config.optimizer == "adamw":
            return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
        raise ValueError(f"unknown optimizer {config.optimizer!r} (adam or adamw)")

    def forward(self, network, batch, selector):
        """The family's training forward: {"logits": [...], "probs": [...], ...} for frames 1..T-1."""
        raise NotImplementedError

    def training_module(self, network):
        """The nn.Module DDP wraps; ``module(batch)`` runs ``forward``."""
        return TrainingStep(network, self.forward)

    def losses(self, outputs, batch, iteration):
        """Scalar losses (must include ``total_loss``) and logged metrics of one step."""
        raise NotImplementedError

    @staticmethod
    def frame_metrics(frame_losses, probs, labels, selector):
        """Per-frame logging every family shares: ``loss_f`` for supervised frame f = 1.., and ``iou``,
        the mean IoU of the real objects over the supervised frames (labels (B, T, H, W))."""
        result = {f"loss_{f}": loss for f, loss in enumerate(frame_losses, start=1)}
        ious = torch.stack([per_object_iou(p.float(), labels[:, f], selector) for f, p in enumerate(probs, start=1)])
        result["iou"] = torch.nanmean(ious)
        return result
