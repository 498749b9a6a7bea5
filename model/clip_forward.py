"""Pieces every family's training forward shares: clips in, per-frame logits and probabilities out.

A training clip is (B, T, 3, H, W) frames with (B, T, H, W) integer labels (0 background, 1..K
objects; K = 1 for a single-object network, else 2 object slots) and a (B, K) selector of the slots
a clip really uses.
"""
import torch
import torch.nn.functional as F

from model.aggregate import aggregate_logits
from model.memory_readout import read_memory

MULTI_OBJECT_SLOTS = 2   # objects per multi-object training clip (STCN appendix: two sampled objects)


def object_slots(network):
    """K: 1 for a single-object network, else ``MULTI_OBJECT_SLOTS``."""
    return 1 if network.single_object else MULTI_OBJECT_SLOTS


def default_selector(network, frames, selector):
    """``selector`` or, when None, every slot real: (B, K) of ``frames``' dtype."""
    return frames.new_ones(frames.shape[0], object_slots(network)) if selector is None else selector


def one_hot_objects(labels, num_objects):
    """Integer label maps (..., H, W) -> float masks (..., K, H, W) for labels 1..K."""
    ids = torch.arange(1, num_objects + 1, device=labels.device).view(-1, 1, 1)
    return (labels.unsqueeze(-3) == ids).float()


def flatten_time(x):
    """(B, T, C, h, w) -> (B, C, T*h*w) with time outermost, as memory is laid out."""
    b, t, c = x.shape[:3]
    return x.permute(0, 2, 1, 3, 4).reshape(b, c, -1)


def clip_features(network, frames):
    """Key features of every frame of the clips, one encoder call: each field (B, T, ...)."""
    b, t = frames.shape[:2]
    keys = network.encode_key(frames.flatten(0, 1))
    return type(keys)(*[f.view(b, t, *f.shape[1:]) for f in keys])


def frame_features(features, i):
    """Frame ``i``'s key features from ``clip_features``: each field (B, ...)."""
    return type(features)(*[f[:, i] for f in features])


def segment(network, object_logits, selector):
    """Per-object decoder logits (B, K, H, W) -> (aggregated log-odds (B, 1+K, H, W), softmax of them).

    Each object's sigmoid is masked by the selector (multi-object networks) before the soft
    aggregation with the background.
    """
    object_probs = torch.sigmoid(object_logits)
    if not network.single_object:
        object_probs = object_probs * selector[:, :, None, None]
    logits = aggregate_logits(object_probs, dim=1)
    return logits, F.softmax(logits, dim=1)


def read_full_memory(keys, values, query):
    """Full-softmax read-out (training: no top-k) of (B, Ck, N) keys and (B, K, Cv, N) values for a
    query's key features -> (B, K, Cv, h, w)."""
    readout, _ = read_memory(keys, values, query.key.flatten(2), top_k=None)
    return readout.view(*readout.shape[:3], *query.key.shape[-2:])
