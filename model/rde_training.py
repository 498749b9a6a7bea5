"""The RDE-VOS training forward (released code, RDE.md section 7): STM and SAM patterns in one clip.

Five frames 0..4, the SAM updated with every frame (theta = 1), full softmax read-out:
- frame 0's values come from the *perturbed* masks (those propagate); values from the true masks
  are computed only as the mask-consistency teacher;
- frames 1 and 3 are segmented from the STM memory [frames 0..t-1] (supervised);
- frames 2 and 4 are segmented from the RDE alone (SAM pattern, supervised); the STM memory is read
  too, as the unbiased-guidance teacher, and it is the STM segmentation whose soft masks encode
  frame 2's value;
- RDE_2 = SAM(f0, f1), RDE_4 = SAM(SAM(RDE_2, f2), f3).
A single-object network (stage 0, no SAM) runs the STM pattern on every frame (3-frame clips).
"""
import torch
import torch.nn.functional as F

from .aggregate import aggregate_logits
from .memory_readout import read_memory
from .training import _flatten_time, one_hot_objects

SAM_FRAMES = (2, 4)   # frames segmented from the RDE in a 5-frame clip


def _read(keys, values, query):
    """Full-softmax read-out of (B, Ck, N) keys and (B, K, Cv, N) values for a query -> (B, K, Cv, h, w)."""
    readout, _ = read_memory(keys, values, query.key.flatten(2), top_k=None)
    return readout.view(*readout.shape[:3], *query.key.shape[-2:])


def decoder_input(readout, query):
    """[read-out || query f16_thin] per object: (B, K, 1024, h, w), the decoder's input."""
    thin = query.f16_thin.unsqueeze(1).expand(-1, readout.shape[1], -1, -1, -1)
    return torch.cat([readout, thin], dim=2)


def rde_train_forward(network, frames, labels, perturbed_masks, selector=None):
    """frames (B, T, 3, H, W) normalised; labels (B, T, H, W); perturbed_masks (B, K, H, W) frame-0 masks
    (K = 1 single-object, else 2); selector (B, K) real object slots (multi-object only).

    Returns {"logits", "probs": supervised frames 1..T-1 (background first), "mc": (true value,
    perturbed value) of frame 0, "ug": [(STM decoder input, SAM decoder input)] per SAM frame}.
    """
    b, t = frames.shape[:2]
    num_objects = 1 if network.single_object else 2
    sam_frames = SAM_FRAMES if hasattr(network, "update_memory") and not network.single_object else ()
    if selector is None:
        selector = frames.new_ones(b, num_objects)
    keys = network.encode_key(frames.flatten(0, 1))
    feats = type(keys)(*[f.view(b, t, *f.shape[1:]) for f in keys])

    def frame_features(i):
        return type(keys)(*[f[:, i] for f in feats])

    def segment(readout, query):
        object_probs = torch.sigmoid(network.decode(readout, query))
        if not network.single_object:
            object_probs = object_probs * selector[:, :, None, None]
        logits = aggregate_logits(object_probs, dim=1)
        return logits, F.softmax(logits, dim=1)

    true_value = network.encode_value(frames[:, 0], feats.f16[:, 0], one_hot_objects(labels[:, 0], num_objects))
    values = [network.encode_value(frames[:, 0], feats.f16[:, 0], perturbed_masks.to(frames.dtype))]
    rde = (feats.key[:, 0], values[0])
    out = {"logits": [], "probs": [], "mc": (true_value, values[0]), "ug": []}
    for i in range(1, t):
        query = frame_features(i)
        stm_readout = _read(_flatten_time(feats.key[:, :i]), torch.stack(values, dim=3).flatten(3), query)
        logits, probs = segment(stm_readout, query)
        if i in sam_frames:
            sam_readout = _read(rde[0].flatten(2), rde[1].flatten(3), query)
            sam_logits, sam_probs = segment(sam_readout, query)
            out["logits"].append(sam_logits)
            out["probs"].append(sam_probs)
            out["ug"].append((decoder_input(stm_readout, query), decoder_input(sam_readout, query)))
        else:
            out["logits"].append(logits)
            out["probs"].append(probs)
        if i < t - 1:
            values.append(network.encode_value(frames[:, i], feats.f16[:, i], probs[:, 1:]))
            if sam_frames:
                rde = network.update_memory(*rde, feats.key[:, i], values[-1])
    return out
