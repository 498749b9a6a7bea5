"""Frame preparation for the network and restoration of its outputs to the frame's own size."""
import numpy as np
import torch
import torch.nn.functional as F

from model.normalization import normalize_image


def image_to_tensor(image, device):
    """H x W x 3 uint8 RGB (numpy or tensor) -> 1 x 3 x H x W float in [0, 1] on ``device``."""
    if isinstance(image, np.ndarray):
        image = torch.from_numpy(np.ascontiguousarray(image))
    if image.dtype != torch.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"a frame must be an H x W x 3 uint8 RGB array, got {tuple(image.shape)} "
                         f"{image.dtype}")
    return image.to(device).permute(2, 0, 1).float().div_(255).contiguous().unsqueeze(0)


class PadToMultiple:
    """Zero-pad H and W up to a multiple (16), floor(d/2) before and the rest after, as STCN does."""

    def __init__(self, height, width, multiple=16):
        self.size = (height, width)
        dh, dw = (-height) % multiple, (-width) % multiple
        self.pad = (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2)   # left, right, top, bottom

    def image(self, image):
        """1 x 3 x H x W in [0, 1] -> normalised and padded."""
        return F.pad(normalize_image(image), self.pad)

    def masks(self, masks):
        """... x H x W -> ... x H' x W' (zero padding)."""
        return F.pad(masks, self.pad)

    def restore(self, probs):
        """... x H' x W' -> ... x H x W (crop the padding)."""
        left, right, top, bottom = self.pad
        return probs[..., top:probs.shape[-2] - bottom, left:probs.shape[-1] - right]
