"""SWEM's training losses, as the published SWEM trainer computes them: bootstrapped cross-entropy
(plain mean before iteration 20k, then the mean of the hardest fraction p of pixels, p falling linearly
from 1 at 20k to 0.30 at 70k and staying 0.30), plus a soft-IoU loss of weight 1.

Conventions are those of ``model.losses``: ``logits`` is a list with one B x (1+K) x H x W tensor of
aggregated log-odds per supervised frame 1..T-1; ``labels`` holds the whole clip (B x T x H x W) or
the supervised frames; ``selector`` (B x K) marks the real object slots.

Further reading: SWEM.md §5.5 (project reference notes, not part of this repository).
"""
import torch

from model.losses import BootstrapSchedule, _supervised_labels, bootstrapped_ce_terms

# plain mean CE before 20k iterations, then the hardest fraction falls linearly to 0.30 at 70k
SWEM_BOOTSTRAP = BootstrapSchedule(start_warm=20_000, end_warm=70_000, top_p=0.30)
IOU_WEIGHT = 1.0
IOU_EPS = 1e-6


def _valid_channels(selector, channels, batch, device):
    """B x (1+K) booleans: background and the real object slots."""
    valid = torch.ones(batch, channels, dtype=torch.bool, device=device)
    if selector is not None and channels > 1:
        valid[:, 1:] = selector[:, :channels - 1].to(device) > 0.5
    return valid


def soft_iou_loss(logits, labels, selector=None):
    """1 - mean over (clip, frame, valid channel incl. background) of sum min(p, y) / (sum max(p, y) + 1e-6).

    p: softmax over the valid channels of each clip (invalid object slots are dropped); y: one-hot
    labels.
    """
    labels = _supervised_labels(logits, labels)
    ious, valids = [], []
    for f, frame_logits in enumerate(logits):
        b, c = frame_logits.shape[:2]
        valid = _valid_channels(selector, c, b, frame_logits.device)
        masked = frame_logits.float().masked_fill(~valid[:, :, None, None], float("-inf"))
        p = torch.softmax(masked, dim=1)
        ids = torch.arange(c, device=labels.device).view(1, c, 1, 1)
        y = (labels[:, f].unsqueeze(1) == ids).to(p.dtype)
        inter = torch.minimum(p, y).flatten(2).sum(dim=2)
        union = torch.maximum(p, y).flatten(2).sum(dim=2)
        ious.append(inter / (union + IOU_EPS))
        valids.append(valid)
    ious, valids = torch.stack(ious), torch.stack(valids)
    return 1 - ious[valids].mean()


def swem_losses(logits, labels, iteration, selector=None, schedule=SWEM_BOOTSTRAP, iou_weight=IOU_WEIGHT):
    """Total loss and its terms for one SWEM step: the sum over frames of the bootstrapped CE plus the
    soft-IoU loss. ``frame_losses`` lists the CE of each supervised frame."""
    frame_losses, p = bootstrapped_ce_terms(logits, labels, iteration, selector, schedule)
    iou_loss = soft_iou_loss(logits, labels, selector)
    ce = sum(frame_losses)
    return {"total_loss": ce + iou_weight * iou_loss, "ce_loss": ce, "iou_loss": iou_loss, "p": p,
            "frame_losses": frame_losses}
