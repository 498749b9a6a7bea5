"""Networks and losses. Public entry points for notebooks, scripts and the trainer:

    from model import load_network, build_network, train_forward
    net = load_network("saves/stcn.pth", device="cuda")
"""
from .aggregate import aggregate, aggregate_logits
from .checkpoint import (CheckpointError, load_network, read_checkpoint, register_architecture,
                         widen_value_input)
from .network import STCN, KeyFeatures, build_network, normalize_image, set_train_mode
from .training import train_forward

# STCN is the fallback architecture; RDE and SWEM register with a predicate on their own keys.
register_architecture("stcn", build=lambda single_object=False: STCN(single_object))
from . import swem  # noqa: E402,F401  (registers "swem")
from .rde import RDE  # noqa: E402  (registers the "rde" architecture)

__all__ = ["STCN", "KeyFeatures", "CheckpointError", "aggregate", "aggregate_logits", "build_network",
           "load_network", "normalize_image", "read_checkpoint", "register_architecture",
           "set_train_mode", "train_forward", "widen_value_input"]
