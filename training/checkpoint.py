"""Weights-only files and resumable training states, written atomically.

A weights-only file is the plain network state dict (released-checkpoint names, no ``module.``
prefix): ``model.load_network`` reads it. The training state adds the optimizer, lr scheduler,
AMP grad scaler, the next iteration and the RNG states; it also keeps the network under the key
``"network"`` so ``model.load_network`` accepts it as well. Every file is written to a temporary
name beside its target and moved into place with ``os.replace``, so a crash mid-write never leaves
a truncated checkpoint. Everything is read back with ``torch.load(..., weights_only=True)``.
"""
import os
import random
from pathlib import Path

import numpy as np
import torch

from model.checkpoint import CheckpointError, read_checkpoint

__all__ = ["atomic_save", "save_weights", "save_training_state", "load_training_state",
           "capture_rng_state", "restore_rng_state"]

STATE_VERSION = 1


def atomic_save(obj, path):
    """torch.save ``obj`` to ``path`` via a temporary file and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def unwrap(network):
    """The bare network inside DDP / training wrappers (anything with ``.module`` or ``.network``)."""
    while True:
        if hasattr(network, "module") and isinstance(network.module, torch.nn.Module):
            network = network.module
        elif hasattr(network, "network") and isinstance(network.network, torch.nn.Module):
            network = network.network
        else:
            return network


def _cpu_state_dict(network):
    return {k: v.detach().cpu().clone() for k, v in unwrap(network).state_dict().items()}


def save_weights(network, path):
    """Weights-only file loadable with ``model.load_network``."""
    return atomic_save(_cpu_state_dict(network), path)


def capture_rng_state():
    """Python, numpy and torch (CPU and CUDA) RNG states as weights-only-loadable objects."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state):
    random.setstate(_as_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuples(obj):
    return tuple(_as_tuples(o) for o in obj) if isinstance(obj, (list, tuple)) else obj


def save_training_state(path, network, optimizer, scheduler, scaler, iteration, config=None):
    """Everything ``--resume`` needs; ``iteration`` is the next iteration to run."""
    state = {
        "version": STATE_VERSION,
        "network": _cpu_state_dict(network),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "iteration": int(iteration),
        "rng": capture_rng_state(),
        "config": dict(config or {}),
    }
    return atomic_save(state, path)


def load_training_state(path):
    """Read a training state written by ``save_training_state`` (weights only, on the CPU)."""
    state = read_checkpoint(path)
    required = ("network", "optimizer", "scheduler", "scaler", "iteration")
    if not isinstance(state, dict) or any(k not in state for k in required):
        found = sorted(state)[:8] if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"{path}: not a training state to resume from (needs {required}; found "
                              f"{found}). To start a stage from weights only, use --load_network")
    return state
