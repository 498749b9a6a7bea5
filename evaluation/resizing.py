"""Processing frames at a smaller size and writing the results back at the original size.

Frames are resized bilinearly, given masks with nearest neighbour, and the network's probabilities
are resized back (bilinear, align_corners=False) before the argmax, as the published YouTubeVOS
evaluation does. Used by eval_youtube.py (``--short_side``) and eval_generic.py (``--max_side``); the
size rules themselves (``short_side_size``, ``max_side_size``) are in ``inference.frame_size``.
"""
import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from inference.frame_size import max_side_size, short_side_size  # noqa: F401  (the size rules, re-exported)
from inference.labels import ObjectChannels


def resize_frames(frames, size):
    for frame in frames:
        if frame.shape[:2] == tuple(size):
            yield frame
        else:
            yield cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def resize_mask(mask, size):
    if mask.shape == tuple(size):
        return mask
    return cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def resize_given_masks(given, size, video_name):
    """{frame: label map} resized to ``size``; warns about objects that vanish at that size."""
    masks = {t: resize_mask(m, size) for t, m in given.items()}
    lost = ObjectChannels.from_masks(given).lost_ids(ObjectChannels.from_masks(masks))
    if lost:
        tqdm.write(f"warning: video {video_name}: object(s) {lost} vanish when the given masks are resized to "
                   f"{size[0]}x{size[1]}; they are not segmented")
    return masks


def restore_probs(probs, size):
    """(K+1) x h x w probabilities resized to ``size`` (bilinear, align_corners=False)."""
    if probs.shape[-2:] == tuple(size):
        return probs
    tensor = torch.from_numpy(np.ascontiguousarray(probs))[None]
    return F.interpolate(tensor, size=tuple(size), mode="bilinear", align_corners=False)[0].numpy()
