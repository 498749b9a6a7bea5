"""The RDE-VOS training forward: STM and SAM patterns in one clip, as the released RDE-VOS trainer runs it
(the paper, §3.3, describes the same pattern: STM memory for the 2nd and 4th frames, SAM for the 3rd and 5th).

Five frames 0..4, the SAM updated with every frame (theta = 1), full softmax read-out:
- frame 0's values come from the *perturbed* masks (those propagate); values from the true masks
  are computed only as the mask-consistency teacher;
- frames 1 and 3 are segmented from the STM memory [frames 0..t-1] (supervised);
- frames 2 and 4 are segmented from the RDE alone (SAM pattern, supervised); the STM memory is read
  too, as the unbiased-guidance teacher, and it is the STM segmentation whose soft masks encode
  frame 2's value;
- RDE_2 = SAM(f0, f1), RDE_4 = SAM(SAM(RDE_2, f2), f3).
A single-object network (stage 0, no SAM) runs the STM pattern on every frame (3-frame clips).

Further reading: RDE.md section 7 (project reference notes, not part of this repository).
"""
import torch

from model.clip_forward import (clip_features, default_selector, flatten_time, frame_features, object_slots,
                                one_hot_objects, read_full_memory, segment)

SAM_FRAMES = (2, 4)   # frames segmented from the RDE in a 5-frame clip


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
    t = frames.shape[1]
    num_objects = object_slots(network)
    sam_frames = SAM_FRAMES if hasattr(network, "update_memory") and not network.single_object else ()
    selector = default_selector(network, frames, selector)
    feats = clip_features(network, frames)

    true_value = network.encode_value(frames[:, 0], feats.f16[:, 0], one_hot_objects(labels[:, 0], num_objects))
    values = [network.encode_value(frames[:, 0], feats.f16[:, 0], perturbed_masks.to(frames.dtype))]
    rde = (feats.key[:, 0], values[0])
    out = {"logits": [], "probs": [], "mc": (true_value, values[0]), "ug": []}
    for i in range(1, t):
        query = frame_features(feats, i)
        stm_readout = read_full_memory(flatten_time(feats.key[:, :i]), torch.stack(values, dim=3).flatten(3), query)
        logits, probs = segment(network, network.decode(stm_readout, query), selector)
        if i in sam_frames:
            sam_readout = read_full_memory(rde[0].flatten(2), rde[1].flatten(3), query)
            sam_logits, sam_probs = segment(network, network.decode(sam_readout, query), selector)
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
