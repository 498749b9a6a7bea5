"""The per-video frame loop shared by every memory policy.

It owns what is common to all policies: frame preparation and padding, object ids (objects may be
given late, as in YouTubeVOS), soft aggregation, the write schedule's bookkeeping, and skipping of
frames that are neither needed for output nor for memory. Make one core per video.
"""
import contextlib

import numpy as np
import torch

from model.aggregate import aggregate

from .policy import PERMANENT, make_policy
from .transforms import PadToMultiple, image_to_tensor


class InferenceCore:
    """Segments one video frame by frame with a memory policy.

    ``step`` consumes one frame and returns the aggregated probabilities of the objects known so far
    ((1 + K) x H x W, background first, objects in the order they were given), or None when the
    frame could be skipped. ``object_ids`` lists those objects' label ids in channel order.
    """

    def __init__(self, network, memory="every5", device=None, amp=False, **policy_options):
        self.network = network
        self.device = torch.device(device) if device is not None else next(network.parameters()).device
        if amp and self.device.type != "cuda":
            raise ValueError(f"amp=True needs a CUDA device (got {self.device}); AMP is not used on CPU")
        self.amp = amp
        self.policy = make_policy(memory, network, **policy_options)
        self.object_ids = []
        self.transform = None
        self.last_write = None

    def _autocast(self):
        if self.amp:
            return torch.autocast("cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def _new_objects(self, t, mask):
        if mask is None:
            return [], None
        mask = torch.as_tensor(np.asarray(mask), device=self.device)
        if mask.ndim != 2 or tuple(mask.shape) != self.transform.size:
            raise ValueError(f"the mask given at frame {t} has shape {tuple(mask.shape)}, but the frames are "
                             f"{self.transform.size}")
        ids = [int(i) for i in torch.unique(mask).tolist() if i != 0]
        again = [i for i in ids if i in self.object_ids]
        if again:
            raise ValueError(f"object(s) {again} given again at frame {t}; give each object only in the frame "
                             "where it first appears (later frames are propagated)")
        return ids, mask

    def step(self, t, frame, mask=None, is_last=False, need_output=True):
        """Frame t (H x W x 3 uint8 RGB); ``mask``: label map holding only objects first given at t.

        ``is_last``: t ends the video (it is never written to memory). ``need_output=False`` lets the
        core skip a frame that the memory policy does not want either.
        """
        image = image_to_tensor(frame, self.device)
        if self.transform is None:
            self.transform = PadToMultiple(*image.shape[-2:])
        elif tuple(image.shape[-2:]) != self.transform.size:
            raise ValueError(f"frame {t} is {tuple(image.shape[-2:])}, earlier frames were {self.transform.size}")
        new_ids, new_mask = self._new_objects(t, mask)
        propagate = bool(self.object_ids)
        if not propagate and not new_ids:
            return None   # before the first given object nothing is defined
        write = PERMANENT if new_ids else (
            None if is_last else self.policy.write_kind(t, self.last_write))
        if not (new_ids or need_output or write):
            return None

        with self._autocast():
            x = self.transform.image(image)
            query = self.network.encode_key(x)
            probs = None
            if propagate:
                readout = self.policy.read(query)
                probs = aggregate(torch.sigmoid(self.network.decode(readout[None], query)[0]).float(), dim=0)
            if new_ids:
                # the aggregated probabilities of known objects are merged and aggregated again
                probs = aggregate(self._merge_new(None if probs is None else probs[1:], new_ids, new_mask), dim=0)
            if write is not None:
                value = self.network.encode_value(x, query.f16, probs[None, 1:].to(x.dtype))[0]
                self.policy.write(t, query, value, permanent=(write == PERMANENT))
                if write == PERMANENT:
                    self.last_write = t
        return self.transform.restore(probs.float())

    def _merge_new(self, object_probs, new_ids, new_mask):
        """New objects' masks replace every known object's probability inside their area."""
        ids = torch.tensor(new_ids, device=self.device).view(-1, 1, 1)
        new = self.transform.masks((new_mask.unsqueeze(0) == ids).float())
        self.object_ids.extend(new_ids)
        self.policy.add_objects(len(new_ids))
        if object_probs is None:
            return new
        outside = (new.sum(dim=0, keepdim=True) <= 0.5).float()
        return torch.cat([object_probs * outside, new], dim=0)

    def stats(self):
        return self.policy.stats()
