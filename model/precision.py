"""Numerics that must not run in half precision under autocast (CUDA fp16 ``--amp``, CPU bfloat16).

``full_precision`` runs a function with autocast off, so its matrix products keep the dtype of their
inputs; ``at_least_float32`` widens half-precision inputs to float32 (float32/float64 pass through,
so float32 and float64 runs are unchanged).
"""
import functools

import torch


def full_precision(fn):
    """Run ``fn`` outside autocast (CUDA and CPU)."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with torch.autocast("cuda", enabled=False), torch.autocast("cpu", enabled=False):
            return fn(*args, **kwargs)
    return wrapped


def at_least_float32(x):
    """``x`` in float32 when it is float16/bfloat16, else unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
