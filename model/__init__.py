"""Networks and losses. Public entry points for notebooks, scripts and the trainer:

    from model import load_network, build_network, train_forward
    net = load_network("saves/stcn.pth", device="cuda")

Shared parts live here (``modules``, ``encoders``, ``memory_readout``, ``aggregate``,
``normalization``, ``checkpoint``, ``losses``, ``clip_forward``); each family is a subpackage
(``model.stcn``, ``model.rde``, ``model.swem``) that registers its architecture with
``load_network`` when imported, which this package does for all three.
"""
from model.aggregate import aggregate, aggregate_logits
from model.checkpoint import (CheckpointError, load_network, read_checkpoint, register_architecture,
                              widen_value_input)
from model.encoders import KeyFeatures
from model.normalization import normalize_image
from model.rde import RDE
from model.stcn import STCN, build_network, set_train_mode, train_forward
from model.swem import SWEM

__all__ = ["RDE", "STCN", "SWEM", "KeyFeatures", "CheckpointError", "aggregate", "aggregate_logits",
           "build_network", "load_network", "normalize_image", "read_checkpoint", "register_architecture",
           "set_train_mode", "train_forward", "widen_value_input"]
