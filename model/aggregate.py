"""Soft aggregation of independent per-object probabilities into one distribution (STM/STCN)."""
import torch

PROB_CLAMP = 1e-7


def aggregate_logits(object_probs, dim=0):
    """Per-object probabilities (K along ``dim``) -> log-odds of [background, objects].

    Background is prod(1 - p_k); all K+1 values are clamped to [1e-7, 1 - 1e-7] before the logit.
    A softmax of the result over ``dim`` gives the aggregated probabilities.
    """
    background = torch.prod(1 - object_probs, dim=dim, keepdim=True)
    p = torch.cat([background, object_probs], dim=dim).clamp(PROB_CLAMP, 1 - PROB_CLAMP)
    return torch.log(p / (1 - p))


def aggregate(object_probs, dim=0):
    """Per-object probabilities (K along ``dim``) -> aggregated probabilities (K+1, background first)."""
    return torch.softmax(aggregate_logits(object_probs, dim=dim), dim=dim)
