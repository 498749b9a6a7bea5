"""The training forward pass of STCN (published training step): full softmax over memory."""
import torch

from model.clip_forward import (clip_features, default_selector, flatten_time, frame_features, object_slots,
                                one_hot_objects, read_full_memory, segment)


def train_forward(network, frames, labels, selector=None):
    """Segment frames 1..T-1 of each clip from frame 0's ground truth, as the published trainer does.

    frames: (B, T, 3, H, W) ImageNet-normalised; labels: (B, T, H, W) integers (0 background,
    1..K objects; K = 1 for a single-object network, else 2); selector: (B, K) which object slots are
    real (multi-object only; default all). Frame t is read from the memory of frames 0..t-1 (frame 0:
    ground truth; later frames: their own soft predictions). Nothing is detached.

    Returns {"logits": [B x (1+K) x H x W log-odds for frames 1..T-1],
             "probs":  [softmax of each, background first]}.
    """
    t = frames.shape[1]
    selector = default_selector(network, frames, selector)
    feats = clip_features(network, frames)
    first_masks = one_hot_objects(labels[:, 0], object_slots(network))
    values = [network.encode_value(frames[:, 0], feats.f16[:, 0], first_masks)]
    out_logits, out_probs = [], []
    for ti in range(1, t):
        memory_key = flatten_time(feats.key[:, :ti])
        memory_value = torch.stack(values, dim=3).flatten(3)   # B, K, Cv, T*h*w
        query = frame_features(feats, ti)
        readout = read_full_memory(memory_key, memory_value, query)
        logits, probs = segment(network, network.decode(readout, query), selector)
        out_logits.append(logits)
        out_probs.append(probs)
        if ti < t - 1:
            values.append(network.encode_value(frames[:, ti], feats.f16[:, ti], probs[:, 1:]))
    return {"logits": out_logits, "probs": out_probs}
