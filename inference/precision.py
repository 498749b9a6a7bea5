"""Numeric precision of inference: float32 (default), bfloat16 on CPU (opt-in), float16 AMP on CUDA.

``precision="bfloat16"`` runs a frame's network and memory work under
``torch.autocast("cpu", dtype=torch.bfloat16)``: convolutions and matrix products take bfloat16
inputs (fast on CPUs with AMX or AVX512-BF16), while autocast keeps reductions such as softmax in
float32. The probabilities a video yields are float32 either way. It is opt-in because bfloat16 keeps
8 mantissa bits: outputs differ from float32 by rounding (measured J&F and speed: README).
``amp=True`` is the published CUDA float16 autocast and excludes ``precision="bfloat16"``.
"""
import contextlib

import torch

FLOAT32, BFLOAT16 = "float32", "bfloat16"
PRECISIONS = (FLOAT32, BFLOAT16)
API_NAMES = {"precision": "precision={!r}", "amp": "amp=True", "cpu": "device='cpu'"}   # how errors name settings


def check_precision(precision, device, amp=False, names=API_NAMES):
    """Raise ValueError for an unknown precision or a combination that cannot run on ``device``.

    ``names`` words the settings in the message (the eval scripts pass their flags' names)."""
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ValueError(f"{names['precision'].format(precision)}: unknown precision; choose one of "
                         f"{', '.join(PRECISIONS)}")
    asked = names["precision"].format(precision)
    if precision == BFLOAT16 and amp:
        raise ValueError(f"{asked} and {names['amp']} exclude each other: bfloat16 is the CPU option, "
                         f"{names['amp']} is CUDA float16; choose one")
    if precision == BFLOAT16 and device.type != "cpu":
        raise ValueError(f"{asked} runs on CPU only, but the device is {device}; pass {names['cpu']}, "
                         f"or on CUDA use {names['amp']} (float16)")
    if amp and device.type != "cuda":
        raise ValueError(f"{names['amp']} needs a CUDA device, but the device is {device}; on CPU use "
                         f"{names['precision'].format(BFLOAT16)}")


def autocast(amp=False, precision=FLOAT32):
    """The context a frame's work runs in (checked by ``check_precision`` beforehand)."""
    if amp:
        return torch.autocast("cuda", dtype=torch.float16)
    if precision == BFLOAT16:
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
