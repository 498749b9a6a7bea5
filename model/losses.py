"""Training losses of the STCN family: bootstrapped cross-entropy and per-object IoU.

Bootstrapped cross-entropy (hard pixel mining, MiVOS/STCN appendix F.5): plain mean
cross-entropy before iteration ``start_warm`` (20k); afterwards only the hardest fraction
``p`` of the pixels of each clip and frame is averaged, ``p`` falling linearly from 1 at
``start_warm`` to ``top_p`` (0.15) at ``end_warm`` (70k) and staying there.

Conventions (those of ``model.train_forward``):
- ``logits``: list with one tensor per supervised frame 1..T-1, each B x (1+objects) x H x W,
  log-odds after soft aggregation, background first.
- ``labels``: integer label maps B x T x H x W of the whole clip (frame 0 included) or
  B x (T-1) x H x W of the supervised frames only; 0 is background, k the k-th object slot.
- ``selector``: B x objects, 1 where the object slot is real. A clip whose second slot is
  empty is scored on the background and first-object channels only.
"""
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "BootstrapSchedule",
    "STCN_BOOTSTRAP",
    "bootstrap_fraction",
    "bootstrapped_ce",
    "bootstrapped_ce_terms",
    "frame_bootstrapped_ce",
    "per_object_iou",
]


@dataclass(frozen=True)
class BootstrapSchedule:
    """When hard-pixel mining starts and how far it anneals (STCN: 20k, 70k, 0.15)."""

    start_warm: int = 20_000
    end_warm: int = 70_000
    top_p: float = 0.15

    def fraction(self, it):
        """Fraction p of the hardest pixels kept at iteration ``it`` (1.0 = plain mean)."""
        if it < self.start_warm:
            return 1.0
        if it >= self.end_warm:
            return float(self.top_p)
        remaining = (self.end_warm - it) / (self.end_warm - self.start_warm)
        return float(self.top_p + (1.0 - self.top_p) * remaining)


STCN_BOOTSTRAP = BootstrapSchedule()


def bootstrap_fraction(it, schedule=STCN_BOOTSTRAP):
    """Top-p fraction used by the bootstrapped CE at iteration ``it``."""
    return schedule.fraction(it)


def frame_bootstrapped_ce(logits, labels, p):
    """Bootstrapped CE of one clip-frame: logits C x H x W (or 1 x C x H x W), labels H x W.

    With ``p == 1`` this is the plain mean cross-entropy; otherwise the mean of the
    ``int(pixels * p)`` largest per-pixel losses.
    """
    if logits.dim() == 3:
        logits = logits.unsqueeze(0)
    if labels.dim() == 2:
        labels = labels.unsqueeze(0)
    labels = labels.long()
    if p >= 1.0:
        return F.cross_entropy(logits, labels)
    per_pixel = F.cross_entropy(logits, labels, reduction="none").flatten()
    count = max(1, int(per_pixel.numel() * p))
    hardest, _ = torch.topk(per_pixel, count, sorted=False)
    return hardest.mean()


def _supervised_labels(logits, labels):
    frames = len(logits)
    if labels.shape[1] == frames + 1:
        return labels[:, 1:]
    if labels.shape[1] == frames:
        return labels
    raise ValueError(
        f"labels hold {labels.shape[1]} frames but there are {frames} logit maps; pass the "
        f"whole clip's labels (T = {frames + 1}) or those of frames 1..T-1 (T-1 = {frames})")


def bootstrapped_ce_terms(logits, labels, it, selector=None, schedule=STCN_BOOTSTRAP):
    """Per-frame losses of a clip batch: returns (list of frame losses, p).

    Each frame's loss is the mean over clips of that clip's bootstrapped CE; a clip whose
    second object slot is empty (``selector[b, 1] <= 0.5``) uses only channels 0 and 1.
    """
    if isinstance(logits, torch.Tensor):
        logits = list(logits.unbind(1))
    labels = _supervised_labels(logits, labels)
    p = schedule.fraction(it)
    batch = labels.shape[0]
    frame_losses = []
    for f, frame_logits in enumerate(logits):
        total = 0.0
        for b in range(batch):
            clip_logits = frame_logits[b]
            if selector is not None and clip_logits.shape[0] > 2 and float(selector[b, 1]) <= 0.5:
                clip_logits = clip_logits[:2]
            total = total + frame_bootstrapped_ce(clip_logits, labels[b, f], p)
        frame_losses.append(total / batch)
    return frame_losses, p


def bootstrapped_ce(logits, labels, it, selector=None, schedule=STCN_BOOTSTRAP):
    """Total training loss of STCN: sum over frames 1..T-1 of the batch-mean bootstrapped CE."""
    frame_losses, _ = bootstrapped_ce_terms(logits, labels, it, selector, schedule)
    return sum(frame_losses)


@torch.no_grad()
def per_object_iou(probs, labels, selector=None, threshold=0.5):
    """IoU of each object slot's thresholded probability with its ground truth.

    ``probs``: B x (1+objects) x H x W (background first) for one frame, ``labels``: B x H x W.
    Returns a B x objects float tensor, NaN where the slot is not real (selector 0).
    An object absent from both prediction and ground truth counts as IoU 1.
    """
    objects = probs.shape[1] - 1
    ious = torch.empty(probs.shape[0], objects, dtype=torch.float32, device=probs.device)
    for k in range(objects):
        pred = probs[:, k + 1] > threshold
        truth = labels == (k + 1)
        inter = (pred & truth).flatten(1).sum(1).float()
        union = (pred | truth).flatten(1).sum(1).float()
        ious[:, k] = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
    if selector is not None:
        valid = selector[:, :objects].to(probs.device) > 0.5
        ious = torch.where(valid, ious, torch.full_like(ious, float("nan")))
    return ious
