"""Golden outputs of the published code and the runs of ours that reproduce them.

The reference folder (default ``../shared/reference`` beside the repository; project reference data,
not part of this repository) must hold:
- ``golden/<name>.npz`` for the runs below: frames, masks, settings and the probabilities (plus some
  intermediate features) the published evaluation code gave on CPU with the synthetic weights;
- ``<family>_state_dict_shapes.json`` (family stcn, rde, swem): every name and shape of a released
  checkpoint;
- ``synthetic_weights.py``, whose ``make_state_dict(shapes, seed)`` (with its per-prefix ``GAINS``)
  rebuilds the deterministic released-format weights the golden files were made with.
A missing file raises ``GoldenMissing`` (the parity tests skip when a golden file is missing). The
parity tests, ``scripts/gpu_check.py`` and ``scripts/swem_float32_agreement.py`` all load and run them
through this module.

Runs: STCN on the DAVIS (``stcn_seed0``, ``stcn_seed1``) and YouTubeVOS (``stcn_yv_seed2``, an object
given at frame 4) protocols, RDE-VOS (``rde_seed0``) and SWEM (``swem_seed0``, float64 in the
published code). Output at frame t depends only on frames 0..t, so a run may stop after the first
``frames`` frames and be compared on those.
"""
import importlib.util
import json
from pathlib import Path

import numpy as np
import torch

from inference import segment_video
from inference.labels import ObjectChannels
from model import load_network
from model.normalization import IMAGENET_MEAN, IMAGENET_STD

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"

# Probability tolerances of the parity tests (max and mean |p - p_golden|); argmax must agree wherever
# the golden top-two margin exceeds MARGIN. SWEM is compared in float64, as it was published.
TOLERANCES = {"stcn": (1e-3, 1e-5), "rde": (1e-3, 1e-5), "swem": (1e-5, 1e-7)}
MARGIN = 1e-3
GOLDEN_RUNS = {"stcn_seed0": "stcn", "stcn_seed1": "stcn", "stcn_yv_seed2": "stcn", "rde_seed0": "rde",
               "swem_seed0": "swem"}


class GoldenMissing(FileNotFoundError):
    """A golden file or a reference file is not where it was looked for."""


def _reference(reference):
    return Path(reference) if reference is not None else REFERENCE


def load_golden(name, reference=None):
    """The arrays of ``golden/<name>.npz`` as a dict."""
    path = _reference(reference) / "golden" / f"{name}.npz"
    if not path.exists():
        raise GoldenMissing(f"golden file {path} not found")
    with np.load(path) as data:
        return dict(data)


def load_shapes(family, reference=None):
    """Released state-dict shapes of ``family`` ('stcn', 'rde', 'swem'): {name: [dims]}."""
    path = _reference(reference) / f"{family}_state_dict_shapes.json"
    if not path.exists():
        raise GoldenMissing(f"state-dict shapes {path} not found")
    return json.loads(path.read_text())


def _synthetic_weights(reference):
    path = _reference(reference) / "synthetic_weights.py"
    if not path.exists():
        raise GoldenMissing(f"{path} not found")
    spec = importlib.util.spec_from_file_location("synthetic_weights", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_state_dict(family="stcn", seed=0, overrides=None, extra_gains=None, reference=None):
    """Deterministic released-format weights, exactly as the golden files were made. ``overrides``
    replaces shapes ({name: dims}); ``extra_gains`` adds per-prefix gains (RDE's golden file names them)."""
    weights = _synthetic_weights(reference)
    shapes = {**load_shapes(family, reference), **(overrides or {})}
    weights.GAINS.update(extra_gains or {})
    return weights.make_state_dict(shapes, seed)


def swem_state_dict(seed=0, reference=None):
    """SWEM's synthetic weights with both encoders' normalisation buffers set to the ImageNet constants."""
    state_dict = synthetic_state_dict("swem", seed, reference=reference)
    for encoder in ("key_encoder", "value_encoder"):
        state_dict[f"{encoder}.mean"] = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        state_dict[f"{encoder}.std"] = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return state_dict


def golden_network(name, golden, reference=None, device="cpu"):
    """The network the golden file ``name`` was made with (float32, eval mode, on ``device``)."""
    family = GOLDEN_RUNS[name]
    seed = int(golden["seed"])
    if family == "stcn":
        state_dict = synthetic_state_dict("stcn", seed, reference=reference)
    elif family == "rde":
        gains = json.loads(str(golden["extra_gains"]))
        state_dict = synthetic_state_dict("rde", seed, extra_gains=gains, reference=reference)
    else:
        state_dict = swem_state_dict(seed, reference=reference)
    return load_network(state_dict, device=device)


def given_masks(golden):
    """The masks argument of ``segment_video``: frame 0's label map, or {frame: label map}."""
    if "given_frames" in golden:
        return {int(t): m for t, m in zip(golden["given_frames"], golden["given_masks"])}
    return golden["first_mask"]


def memory_options(name, golden):
    """Memory policy and options of the published run ``name`` (the golden file's settings)."""
    family = GOLDEN_RUNS[name]
    if family == "stcn":
        return "every5", {"top_k": int(golden["top_k"]), "mem_every": int(golden["mem_every"]),
                          "include_last": bool(golden["include_last"])}
    if family == "rde":
        return "rde", {"layout": str(golden["mode"]), "top_k": int(golden["top_k"]),
                       "mem_every": int(golden["mem_every"])}
    return "swem", {"work_size": tuple(int(v) for v in golden["work_hw"]), "init_bases": golden["kappa_init"],
                    "n_bases": int(golden["n_bases"]), "em_iters": int(golden["em_iters"]),
                    "tau": float(golden["tau"])}


def run_golden(name, golden, network, frames=None, **precision):
    """Our probabilities for the golden video, (K+1, T, H, W) float32, with the published settings;
    ``frames``: only the first so many frames; ``precision``: segment_video's ``amp=True`` (CUDA fp16)
    or ``precision="bfloat16"`` (CPU)."""
    memory, options = memory_options(name, golden)
    video = golden["frames"][:frames]
    device = next(network.parameters()).device
    outputs = segment_video(network, iter(video), given_masks(golden), memory=memory, device=device, **precision,
                            **options)
    return np.stack(list(outputs), axis=1)


def compare(probs, golden, frames=None):
    """Agreement of ``probs`` (K+1, T', H, W) with the golden file's first T' frames: max and mean
    |dp|, argmax flips among the confident pixels (golden top-two margin > MARGIN) and whether every
    value is finite."""
    reference = golden["probs"][:, :probs.shape[1]]
    masks = golden["masks"][:probs.shape[1]]
    # YouTubeVOS files name their objects' label ids; DAVIS files give ids 1..K in the first mask
    channels = (ObjectChannels(golden["object_ids"]) if "object_ids" in golden
                else ObjectChannels.from_masks(given_masks(golden)))
    ours = channels.to_labels(probs)
    top2 = np.sort(reference, axis=0)[-2:]
    confident = (top2[1] - top2[0]) > MARGIN
    diff = np.abs(probs - reference)
    return {"max": float(diff.max()), "mean": float(diff.mean()), "finite": bool(np.isfinite(probs).all()),
            "flips": int((ours != masks)[confident].sum()), "confident": int(confident.sum())}


def within_tolerance(name, result):
    """Whether a ``compare`` result meets the parity tests' tolerances for the golden run ``name``."""
    max_tol, mean_tol = TOLERANCES[GOLDEN_RUNS[name]]
    return result["finite"] and result["max"] <= max_tol and result["mean"] <= mean_tol and result["flips"] == 0
