"""SWEM's training forward, as the published SWEM trainer runs it: bases from frame 0's ground truth,
then every frame but the last is segmented and memorised with its own soft prediction (3-frame clips:
frames 1 and 2 segmented, frame 1 memorised).

Only the basis values carry gradient through the EM (to the value encoder and, through its mask
input, to earlier predictions); the basis keys are constants, so ``key_proj`` learns through the
query side of the matching.

Further reading: SWEM.md §5.5 (project reference notes, not part of this repository).
"""
import torch
import torch.nn.functional as F

from model.clip_forward import clip_features, default_selector, frame_features, object_slots, one_hot_objects, segment
from model.swem.em import EM_ITERS, N_BASES, TAU, init_bases, mask_weights, weighted_em


def swem_train_forward(network, frames, labels, selector=None, n_bases=N_BASES, em_iters=EM_ITERS,
                       tau=TAU, weighting="adaptive"):
    """Segment frames 1..T-1 of each clip from frame 0's ground truth.

    frames: (B, T, 3, H, W) RGB in [0, 1], H and W multiples of 16; labels: (B, T, H, W) integers
    (K = 1 for a single-object network, else 2 object slots); selector: (B, K) real slots
    (default all). Frame 0's bases start from random keys (global torch generator); each frame
    t < T-1 is memorised with the hard argmax and its soft probabilities (with gradient).

    Returns {"logits": [B x (1+K) x H x W aggregated log-odds for frames 1..T-1], "probs": [...]}.
    """
    t, _, h, w = frames.shape[1:]
    num_objects = object_slots(network)
    selector = default_selector(network, frames, selector)
    grid = (h // 16, w // 16)
    feats = clip_features(network, frames)

    def memorise(i, hard, soft, prior):
        value = network.encode_value(frames[:, i], feats.f16[:, i], soft)
        return weighted_em(feats.key[:, i].flatten(2), value.flatten(3), mask_weights(hard, soft, grid),
                           prior, iters=em_iters, tau=tau, weighting=weighting)

    dtype = next(network.parameters()).dtype
    like = torch.empty(0, dtype=dtype, device=frames.device)
    first_masks = one_hot_objects(labels[:, 0], num_objects).to(dtype)
    prior = init_bases(frames.shape[0], num_objects, network.key_channels, network.value_channels, n_bases,
                       like=like)
    first = memorise(0, first_masks, first_masks, prior)
    update = None
    out_logits, out_probs = [], []
    for i in range(1, t):
        bases = first if update is None else first.cat(update, dim=4)
        query = frame_features(feats, i)
        context = network.read(query, bases, tau=tau)
        logits, probs = segment(network, network.decode(context, query, out_size=(h, w)), selector)
        out_logits.append(logits)
        out_probs.append(probs)
        if i < t - 1:
            hard = F.one_hot(probs.detach().argmax(dim=1), num_objects + 1).permute(0, 3, 1, 2)[:, 1:]
            update = memorise(i, hard.to(dtype), probs[:, 1:], update if update is not None else first)
    return {"logits": out_logits, "probs": out_probs}
