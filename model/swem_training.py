"""SWEM's training forward (SWEM.md §5.5): bases from frame 0's ground truth, then every frame but
the last is segmented and memorised with its own soft prediction.

Only the basis values carry gradient through the EM (to the value encoder and, through its mask
input, to earlier predictions); the basis keys are constants, so ``key_proj`` learns through the
query side of the matching.
"""
import torch
import torch.nn.functional as F

from .aggregate import aggregate_logits
from .network import IMAGENET_MEAN, IMAGENET_STD
from .swem_em import EM_ITERS, N_BASES, TAU, init_bases, mask_weights, weighted_em
from .training import one_hot_objects


def denormalize_image(image):
    """ImageNet-normalised (..., 3, H, W) -> RGB in [0, 1] (SWEM normalises inside its encoders)."""
    mean = image.new_tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = image.new_tensor(IMAGENET_STD).view(3, 1, 1)
    return image * std + mean


def swem_train_forward(network, frames, labels, selector=None, n_bases=N_BASES, em_iters=EM_ITERS,
                       tau=TAU, weighting="adaptive"):
    """Segment frames 1..T-1 of each clip from frame 0's ground truth.

    frames: (B, T, 3, H, W) RGB in [0, 1], H and W multiples of 16; labels: (B, T, H, W) integers
    (K = 1 for a single-object network, else 2 object slots); selector: (B, K) real slots
    (default all). Frame 0's bases start from random keys (global torch generator); each frame
    t < T-1 is memorised with the hard argmax and its soft probabilities (with gradient).

    Returns {"logits": [B x (1+K) x H x W aggregated log-odds for frames 1..T-1], "probs": [...]}.
    """
    b, t, _, h, w = frames.shape
    num_objects = 1 if network.single_object else 2
    if selector is None:
        selector = frames.new_ones(b, num_objects)
    grid = (h // 16, w // 16)
    keys = network.encode_key(frames.flatten(0, 1))
    feats = type(keys)(*[f.view(b, t, *f.shape[1:]) for f in keys])

    def query(i):
        return type(keys)(*[f[:, i] for f in feats])

    def memorise(i, hard, soft, prior):
        value = network.encode_value(frames[:, i], feats.f16[:, i], soft)
        return weighted_em(feats.key[:, i].flatten(2), value.flatten(3), mask_weights(hard, soft, grid),
                           prior, iters=em_iters, tau=tau, weighting=weighting)

    like = torch.empty(0, dtype=next(network.parameters()).dtype, device=frames.device)
    first_masks = one_hot_objects(labels[:, 0], num_objects).to(like.dtype)
    prior = init_bases(b, num_objects, network.key_channels, network.value_channels, n_bases, like=like)
    first = memorise(0, first_masks, first_masks, prior)
    update = None
    out_logits, out_probs = [], []
    for i in range(1, t):
        bases = first if update is None else first.cat(update, dim=4)
        context = network.read(query(i), bases, tau=tau)
        object_probs = torch.sigmoid(network.decode(context, query(i), out_size=(h, w)))
        if not network.single_object:
            object_probs = object_probs * selector[:, :, None, None].to(object_probs.dtype)
        logits = aggregate_logits(object_probs, dim=1)
        probs = F.softmax(logits, dim=1)
        out_logits.append(logits)
        out_probs.append(probs)
        if i < t - 1:
            hard = F.one_hot(probs.detach().argmax(dim=1), num_objects + 1).permute(0, 3, 1, 2)[:, 1:]
            update = memorise(i, hard.to(like.dtype), probs[:, 1:], update if update is not None else first)
    return {"logits": out_logits, "probs": out_probs}
