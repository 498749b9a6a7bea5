"""Training recipes: what a model family brings to the shared trainer.

The trainer (``util/trainer.py``) owns everything the families share: datasets and sampling, DDP,
AMP, the lr schedule, logging and checkpoints. A recipe owns what differs between STCN, RDE and
SWEM: the stage defaults (batch, iterations, lr steps, optimizer), the clip length, how the network
is built and initialised from an earlier stage, and the forward pass with its losses.

To add a family, subclass ``TrainingRecipe`` and add it to ``RECIPES``; ``train.py --model NAME``
picks it.
"""
import importlib
from dataclasses import dataclass, field
from typing import Optional, Tuple

import torch
import torch.nn as nn

from dataset.curriculum import BL30K_CURRICULUM, MAIN_CURRICULUM, SkipCurriculum
from model.losses import STCN_BOOTSTRAP, BootstrapSchedule, bootstrapped_ce_terms, per_object_iou

__all__ = ["StageDefaults", "TrainingRecipe", "STCNRecipe", "RECIPES", "all_recipes", "get_recipe"]

STAGE_DATA = {0: "static", 1: "bl30k", 2: "main", 3: "main"}


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


class TrainingRecipe:
    """Interface of a model family's training step. ``num_frames``: clip length unless a stage's
    defaults name their own. ``frame_sampler``: how video clips pick their frames, a function
    ``(rng, length, num_frames, max_skip) -> indices`` (None: STCN's ``sample_frame_indices``)."""

    name = "base"
    num_frames = 3
    frame_sampler = None
    max_objects = 2
    find_unused_parameters = False

    def stage_defaults(self, stage):
        raise NotImplementedError

    def configure_from_args(self, args):
        """Read the family's own flags (added by an optional static ``add_arguments(parser)``);
        flags left unset take the stage's values."""
        return self

    def family_options(self):
        """The family's own settings as configured, JSON values by name: ``TrainConfig.family_options``
        (config.json, compared on --resume). The trainer hands them back through ``configure_options``."""
        return {}

    def configure_options(self, stage, options):
        """Apply ``family_options`` saved in a config (missing ones: the stage's values)."""
        if options:
            raise ValueError(f"model {self.name!r} has no family options, got {sorted(options)}")
        return self

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

    def training_module(self, network):
        """An nn.Module whose ``forward(batch)`` runs the network's training forward (DDP wraps it)."""
        raise NotImplementedError

    def losses(self, outputs, batch, iteration):
        """Scalar losses (must include ``total_loss``) and logged metrics of one step."""
        raise NotImplementedError


class _STCNStep(nn.Module):
    """Calls ``model.train_forward`` through ``forward`` so DDP sees (and synchronises) the step."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, rgb, labels, selector):
        from model import train_forward
        objects = 1 if self.network.single_object else selector.shape[1]
        return train_forward(self.network, rgb, labels, None if self.network.single_object else selector[:, :objects])


class STCNRecipe(TrainingRecipe):
    """STCN (NeurIPS 2021): 3-frame clips, bootstrapped CE, Adam lr 1e-5, weight decay 1e-7.

    Stage defaults (appendix F; batch sizes are per process, the paper used 2 GPUs):
    0 static images, single object: batch 8, 300k iterations, lr x0.1 at 150k;
    1 BL30K: batch 4, 500k, decay at 400k (the appendix text says 450k);
    2 main after BL30K: batch 4, 300k, decay at 250k;
    3 main without BL30K: batch 4, 150k, decay at 125k.
    """

    name = "stcn"
    bootstrap: BootstrapSchedule = STCN_BOOTSTRAP

    def stage_defaults(self, stage):
        table = {
            0: StageDefaults("static", 8, 300_000, (150_000,), single_object=True),
            1: StageDefaults("bl30k", 4, 500_000, (400_000,), curriculum=BL30K_CURRICULUM),
            2: StageDefaults("main", 4, 300_000, (250_000,), curriculum=MAIN_CURRICULUM),
            3: StageDefaults("main", 4, 150_000, (125_000,), curriculum=MAIN_CURRICULUM),
        }
        if stage not in table:
            raise ValueError(f"STCN has stages 0-3, not {stage}")
        return table[stage]

    def build_network(self, single_object, pretrained):
        from model import build_network
        return build_network(single_object=single_object, pretrained=pretrained)

    def set_train_mode(self, network):
        from model import set_train_mode
        return set_train_mode(network)

    def prepare_state_dict(self, state_dict, network):
        from model.checkpoint import widen_value_input
        if not getattr(network, "single_object", False):
            # a stage-0 file: its value encoder gains the "other objects" channel, orthogonally
            # initialised as the published trainer does (evaluation pads zeros instead)
            state_dict = widen_value_input(state_dict, mode="orthogonal")
        return state_dict

    def training_module(self, network):
        return _STCNStep(network)

    def losses(self, outputs, batch, iteration):
        labels, selector = batch["labels"], batch["selector"]
        frame_losses, p = bootstrapped_ce_terms(outputs["logits"], labels, iteration, selector, self.bootstrap)
        result = {"total_loss": sum(frame_losses), "p": p}
        for f, loss in enumerate(frame_losses, start=1):
            result[f"loss_{f}"] = loss
        ious = torch.stack([per_object_iou(probs.float(), labels[:, f + 1], selector)
                            for f, probs in enumerate(outputs["probs"])])
        result["iou"] = torch.nanmean(ious)
        return result


RECIPES = {"stcn": STCNRecipe}


# Families living in their own modules register themselves into RECIPES when imported.
FAMILY_MODULES = ("util.rde_recipe", "util.swem_recipe")


def all_recipes():
    """Every registered family (importing the family modules first): {name: recipe class}."""
    for module in FAMILY_MODULES:
        importlib.import_module(module)
    return RECIPES


def get_recipe(name):
    all_recipes()
    if name not in RECIPES:
        raise ValueError(f"no training recipe for model {name!r}; known: {sorted(RECIPES)}")
    return RECIPES[name]()
