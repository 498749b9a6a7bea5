"""The training forward pass of STCN (published training step): full softmax over memory."""
import torch
import torch.nn.functional as F

from .aggregate import aggregate_logits
from .memory_readout import read_memory


def one_hot_objects(labels, num_objects):
    """Integer label maps (..., H, W) -> float masks (..., K, H, W) for labels 1..K."""
    ids = torch.arange(1, num_objects + 1, device=labels.device).view(-1, 1, 1)
    return (labels.unsqueeze(-3) == ids).float()


def _flatten_time(x):
    """(B, T, C, h, w) -> (B, C, T*h*w) with time outermost, as memory is laid out."""
    b, t, c = x.shape[:3]
    return x.permute(0, 2, 1, 3, 4).reshape(b, c, -1)


def train_forward(network, frames, labels, selector=None):
    """Segment frames 1..T-1 of each clip from frame 0's ground truth, as the published trainer does.

    frames: (B, T, 3, H, W) ImageNet-normalised; labels: (B, T, H, W) integers (0 background,
    1..K objects; K = 1 for a single-object network, else 2); selector: (B, K) which object slots are
    real (multi-object only; default all). Frame t is read from the memory of frames 0..t-1 (frame 0:
    ground truth; later frames: their own soft predictions). Nothing is detached.

    Returns {"logits": [B x (1+K) x H x W log-odds for frames 1..T-1],
             "probs":  [softmax of each, background first]}.
    """
    b, t = frames.shape[:2]
    num_objects = 1 if network.single_object else 2
    if selector is None:
        selector = frames.new_ones(b, num_objects)
    keys = network.encode_key(frames.flatten(0, 1))
    feats = type(keys)(*[f.view(b, t, *f.shape[1:]) for f in keys])

    first_masks = one_hot_objects(labels[:, 0], num_objects)
    values = [network.encode_value(frames[:, 0], feats.f16[:, 0], first_masks)]
    out_logits, out_probs = [], []
    for ti in range(1, t):
        memory_key = _flatten_time(feats.key[:, :ti])
        memory_value = torch.stack(values, dim=3).flatten(3)   # B, K, Cv, T*h*w
        query = type(keys)(*[f[:, ti] for f in feats])
        readout, _ = read_memory(memory_key, memory_value, query.key.flatten(2), top_k=None)
        readout = readout.view(*readout.shape[:3], *query.key.shape[2:])
        object_probs = torch.sigmoid(network.decode(readout, query))
        if not network.single_object:
            object_probs = object_probs * selector[:, :, None, None]
        logits = aggregate_logits(object_probs, dim=1)
        probs = F.softmax(logits, dim=1)
        out_logits.append(logits)
        out_probs.append(probs)
        if ti < t - 1:
            values.append(network.encode_value(frames[:, ti], feats.f16[:, ti], probs[:, 1:]))
    return {"logits": out_logits, "probs": out_probs}
