"""Processing frames at a smaller size and writing the results back at the original size.

Frames are resized bilinearly, given masks with nearest neighbour, and the network's probabilities
are resized back (bilinear, align_corners=False) before the argmax, as the published YouTubeVOS
evaluation does. Used by eval_youtube.py (``--short_side``) and eval_generic.py (``--max_side``).
"""
import numpy as np
from tqdm import tqdm


def short_side_size(height, width, short_side):
    """(h, w) with the shorter side = short_side and the longer scaled (truncated, like torchvision);
    ``short_side`` 0/None keeps the size."""
    if not short_side or min(height, width) == short_side:
        return height, width
    if height <= width:
        return short_side, int(short_side * width / height)
    return int(short_side * height / width), short_side


def max_side_size(height, width, max_side):
    """(h, w) scaled down so the longer side is at most ``max_side`` (rounded, at least 1 pixel);
    smaller frames and ``max_side`` 0/None keep their size."""
    if not max_side or max(height, width) <= max_side:
        return height, width
    scale = max_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def resize_frames(frames, size):
    import cv2
    for frame in frames:
        if frame.shape[:2] == tuple(size):
            yield frame
        else:
            yield cv2.resize(frame, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)


def resize_mask(mask, size):
    import cv2
    if mask.shape == tuple(size):
        return mask
    return cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)


def resize_given_masks(given, size, video_name):
    """{frame: label map} resized to ``size``; warns about objects that vanish at that size."""
    from inference import object_ids
    masks = {t: resize_mask(m, size) for t, m in given.items()}
    lost = sorted(set(object_ids(given)) - set(object_ids(masks)))
    if lost:
        tqdm.write(f"warning: video {video_name}: object(s) {lost} vanish when the given masks are resized to "
                   f"{size[0]}x{size[1]}; they are not segmented")
    return masks


def restore_probs(probs, size):
    """(K+1) x h x w probabilities resized to ``size`` (bilinear, align_corners=False)."""
    if probs.shape[-2:] == tuple(size):
        return probs
    import torch
    import torch.nn.functional as F
    tensor = torch.from_numpy(np.ascontiguousarray(probs))[None]
    return F.interpolate(tensor, size=tuple(size), mode="bilinear", align_corners=False)[0].numpy()
