"""Perturbed first-frame masks for RDE-VOS's self-correction training (mask consistency loss).

Procedure of the released RDE-VOS trainer (the paper, §3.3, says only "random dilation and eroding"):
one IoU target u ~ U[0.85, 1) per clip; then, per object, rounds of four local operations on random
axis-aligned sub-rectangles -- with probability 0.1 set the rectangle's centre pixel to 0 or 1, then
dilate or erode (1/2 each) the rectangle with a random rectangle / ellipse / half-ellipse structuring
element of size 3..9 -- until, after a round, the IoU with the true mask is below u (at most 250
rounds). Empty masks are left empty.

Further reading: RDE.md section 7 (project reference notes, not part of this repository).
"""
import cv2
import numpy as np
import torch

IOU_RANGE = (0.85, 1.0)       # target IoU drawn per clip
MAX_ROUNDS = 250
OPS_PER_ROUND = 4
CENTRE_PIXEL_PROB = 0.1
KERNEL_SIZES = (3, 9)         # inclusive


def iou(a, b):
    a, b = a.astype(bool), b.astype(bool)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def _structuring_element(rng):
    size = int(rng.integers(KERNEL_SIZES[0], KERNEL_SIZES[1] + 1))
    kind = rng.integers(3)
    if kind == 0:
        return np.ones((size, size), np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    if kind == 2:   # half ellipse, cut on a random side
        kernel = kernel.copy()
        kernel[size // 2 + 1:] = 0
        kernel = np.ascontiguousarray(np.rot90(kernel, int(rng.integers(4))))
    return kernel


def _local_operation(mask, rng):
    """One operation in place on a random sub-rectangle of ``mask`` (uint8 0/1)."""
    h, w = mask.shape
    y0, y1 = sorted(int(v) for v in rng.integers(0, h + 1, size=2))
    x0, x1 = sorted(int(v) for v in rng.integers(0, w + 1, size=2))
    if y1 - y0 < 1 or x1 - x0 < 1:
        return
    region = mask[y0:y1, x0:x1]
    if rng.random() < CENTRE_PIXEL_PROB:
        region[(y1 - y0) // 2, (x1 - x0) // 2] = int(rng.integers(2))
    kernel = _structuring_element(rng)
    morph = cv2.dilate if rng.random() < 0.5 else cv2.erode
    region[:] = morph(np.ascontiguousarray(region), kernel)


def perturb_mask(mask, target_iou, rng, max_rounds=MAX_ROUNDS):
    """A copy of binary ``mask`` (H x W) perturbed until its IoU with ``mask`` is below ``target_iou``.

    Stops after the first round that gets there (or after ``max_rounds``); empty masks stay empty.
    """
    truth = np.asarray(mask).astype(bool)
    out = truth.astype(np.uint8)
    if not truth.any():
        return out.astype(bool)
    for _ in range(max_rounds):
        for _ in range(OPS_PER_ROUND):
            _local_operation(out, rng)
        if iou(out, truth) < target_iou:
            break
    return out.astype(bool)


def perturb_objects(labels, num_objects, rng, iou_range=IOU_RANGE):
    """Per-object perturbed masks of a label map (H x W, objects 1..num_objects) with one IoU target
    for the clip. Returns (num_objects x H x W bool, target)."""
    target = float(rng.uniform(*iou_range))
    labels = np.asarray(labels)
    masks = np.stack([perturb_mask(labels == k, target, rng) for k in range(1, num_objects + 1)])
    return masks, target


def add_perturbed_first_masks(sample, rng, num_objects):
    """Per-sample extra of RDE training clips: {"perturbed_masks": (num_objects, H, W) float32 tensor},
    frame 0's objects 1..num_objects of ``sample["labels"]`` perturbed with the sample's ``rng``."""
    masks, _ = perturb_objects(sample["labels"][0].numpy(), num_objects, rng)
    return {"perturbed_masks": torch.from_numpy(masks.astype(np.float32))}
