"""Loading released and self-trained checkpoints into the right network, with clear errors.

Every legacy conversion lives here, once: the DDP ``module.`` prefix, full training states that hold
the network under a key, and stage-0 (single-object) files whose value encoder takes 4 input channels.
A file that is neither of torch.save's formats (zip archive, legacy pickle) is "not a PyTorch
checkpoint"; weights holding NaN or Inf fail loading naming the first such tensor.
"""
import os
import pickle
import zipfile
from collections.abc import Mapping

import torch
import torch.nn as nn

VALUE_INPUT_WEIGHT = "value_encoder.conv1.weight"
NETWORK_KEYS = ("network", "model", "state_dict", "net")  # where training states keep the weights
_MAX_NAMED = 5


class CheckpointError(ValueError):
    """A file or state dict that cannot be loaded as the requested network."""


# name -> (predicate on a state dict or None for the fallback, builder(single_object) -> nn.Module)
_ARCHITECTURES = {}
# name -> explain(state_dict) -> str or None: what a file that does not match this architecture lacks
_EXPLAIN = {}


def register_architecture(name, build, matches=None, explain=None):
    """Make ``load_network`` know an architecture. ``matches(state_dict)`` recognises its checkpoints;
    the one registered without a predicate (STCN) is used when no other matches. ``explain``
    (optional) words the load error when a state dict does not fit this architecture."""
    _ARCHITECTURES[name] = (matches, build)
    if explain is not None:
        _EXPLAIN[name] = explain


def registered_builder(name):
    """The ``build(single_object=False)`` registered under ``name``, or None when none is."""
    entry = _ARCHITECTURES.get(name)
    return None if entry is None else entry[1]


def architecture_of(state_dict):
    for name, (matches, _) in _ARCHITECTURES.items():
        if matches is not None and matches(state_dict):
            return name
    fallback = [name for name, (matches, _) in _ARCHITECTURES.items() if matches is None]
    if not fallback:
        raise CheckpointError("no known architecture matches this state dict")
    return fallback[0]


PICKLE_PROTOCOL_OPCODE = b"\x80"  # the first byte of a protocol-2+ pickle (torch's legacy format)


def _is_torch_file(path):
    """Whether ``path`` has one of torch.save's formats: a zip archive, or a pickle (legacy)."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as handle:
        return handle.read(1) == PICKLE_PROTOCOL_OPCODE


def read_checkpoint(path):
    """torch.load(weights_only=True) with one clear error for anything that is not a checkpoint."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint file not found")
    if not _is_torch_file(path):
        with open(path, "rb") as handle:
            start = handle.read(16)
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither a zip archive nor a pickle; it starts "
                              f"with {start!r})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a weights-only PyTorch checkpoint (it may contain pickled "
                              f"code, which is never loaded): {first}") from exc
    except Exception as exc:  # truncated zip, random bytes, ...
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: "
                              f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''})") from exc


def _is_state_dict(obj):
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and torch.is_tensor(v) for k, v in obj.items())


def extract_state_dict(obj, source="state dict"):
    """A plain state dict, or the network inside a training state, with any ``module.`` prefix removed."""
    if not _is_state_dict(obj):
        inner = None
        if isinstance(obj, Mapping):
            inner = next((obj[k] for k in NETWORK_KEYS if k in obj and _is_state_dict(obj[k])), None)
        if inner is None:
            found = list(obj.keys())[:8] if isinstance(obj, Mapping) else type(obj).__name__
            raise CheckpointError(f"{source}: holds no network weights (expected a state dict or a "
                                  f"training state with one of {NETWORK_KEYS}; found {found})")
        obj = inner
    state_dict = strip_prefix(dict(obj))
    check_finite(state_dict, source)
    return state_dict


def check_finite(state_dict, source="state dict"):
    """CheckpointError naming the first floating-point tensor that holds NaN or Inf."""
    for key, tensor in state_dict.items():
        if tensor.is_floating_point() or tensor.is_complex():
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise CheckpointError(f"{source}: tensor {key} holds {bad} NaN/Inf value(s) of {tensor.numel()}; "
                                      f"these weights are unusable (did the training diverge?)")


def strip_prefix(state_dict, prefix="module."):
    if any(k.startswith(prefix) for k in state_dict):
        return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}
    return state_dict


def widen_value_input(state_dict, mode="zeros"):
    """Give a stage-0 (4-input-channel) value encoder its 5th "other objects" channel.

    mode="zeros": the published evaluation scripts' conversion; outputs are unchanged.
    mode="orthogonal": the published trainer's conversion when a later stage starts from stage-0
    weights (a zero channel would get no gradient signal of its own).
    """
    weight = state_dict.get(VALUE_INPUT_WEIGHT)
    if weight is None or weight.shape[1] != 4:
        return state_dict
    extra = torch.zeros(weight.shape[0], 1, *weight.shape[2:], dtype=weight.dtype)
    if mode == "orthogonal":
        nn.init.orthogonal_(extra)
    elif mode != "zeros":
        raise ValueError(f"unknown widening mode {mode!r} (zeros or orthogonal)")
    return {**state_dict, VALUE_INPUT_WEIGHT: torch.cat([weight, extra], dim=1)}


def _named(keys):
    keys = sorted(keys)
    more = f" (+{len(keys) - _MAX_NAMED} more)" if len(keys) > _MAX_NAMED else ""
    return ", ".join(keys[:_MAX_NAMED]) + more


def check_compatible(network, state_dict, source, hint=""):
    """Raise one CheckpointError naming missing, unexpected and mis-shaped keys (first few of each)."""
    expected = network.state_dict()
    missing = set(expected) - set(state_dict)
    unexpected = set(state_dict) - set(expected)
    mis_shaped = {k for k in set(expected) & set(state_dict) if expected[k].shape != state_dict[k].shape}
    problems = []
    if missing:
        problems.append(f"missing keys: {_named(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_named(unexpected)}")
    if mis_shaped:
        problems.append("wrong shapes: " + ", ".join(
            f"{k} {tuple(state_dict[k].shape)} vs {tuple(expected[k].shape)}"
            for k in sorted(mis_shaped)[:_MAX_NAMED]))
    if problems:
        raise CheckpointError(f"{source}: does not match the {type(network).__name__} network; "
                              + "; ".join(problems) + (f". {hint}" if hint else ""))


def load_network(checkpoint, device="cpu", architecture=None):
    """Build the network a checkpoint was saved from and load it strictly, in eval mode.

    checkpoint: a path, or a state dict / training-state dict already in memory. The architecture
    (stcn, rde, swem, ...) is recognised from the keys unless ``architecture`` names one.
    """
    if isinstance(checkpoint, (str, os.PathLike)):
        source = os.fspath(checkpoint)
        obj = read_checkpoint(checkpoint)
    else:
        source, obj = "state dict", checkpoint
    state_dict = extract_state_dict(obj, source)
    detected = architecture_of(state_dict)
    name = architecture or detected
    if name not in _ARCHITECTURES:
        raise CheckpointError(f"unknown architecture {name!r}; known: {sorted(_ARCHITECTURES)}")
    network = _ARCHITECTURES[name][1](single_object=False)
    state_dict = widen_value_input(state_dict, mode="zeros")
    hint = ""
    if detected != name:
        hint = f"The keys look like a {detected} checkpoint, but {name} was requested"
    explanation = _EXPLAIN[name](state_dict) if name in _EXPLAIN else None
    if explanation:
        hint = f"{explanation}. {hint}" if hint else explanation
    check_compatible(network, state_dict, source, hint)
    network.load_state_dict(state_dict, strict=True)
    return network.to(device).eval()
