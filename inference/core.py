"""The per-video frame loop shared by every memory policy.

It owns what is common to all policies: frames and object ids (objects may be given late, as in
YouTubeVOS), the write schedule's bookkeeping, and skipping of frames that are neither needed for
output nor for memory. Frame preparation (STCN: padding), decoding with soft aggregation and memory
writes go through the policy's hooks (``inference.policy``). Make one core per video.
"""
import numpy as np
import torch

from inference.policy import PERMANENT, make_policy
from inference.precision import FLOAT32, autocast, check_precision
from inference.transforms import image_to_tensor


class InferenceCore:
    """Segments one video frame by frame with a memory policy.

    ``step`` consumes one frame and returns the aggregated probabilities of the objects known so far
    ((1 + K) x H x W, background first, objects in the order they were given), or None when the
    frame could be skipped. ``object_ids`` lists those objects' label ids in channel order.
    ``channels_last``: the network runs on channels-last tensors (see ``model.modules.like_format``).
    ``amp`` (CUDA float16) and ``precision`` ("float32", or "bfloat16" on CPU): ``inference.precision``.
    """

    def __init__(self, network, memory="every5", device=None, amp=False, channels_last=True, precision=FLOAT32,
                 **policy_options):
        self.network = network
        self.device = torch.device(device) if device is not None else next(network.parameters()).device
        check_precision(precision, self.device, amp)
        self.amp = amp
        self.precision = precision
        self.channels_last = channels_last
        self.policy = make_policy(memory, network, **policy_options)
        self.object_ids = []
        self.transform = None
        self.last_write = None

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
            self.transform = self.policy.make_transform(*image.shape[-2:])
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

        with autocast(self.amp, self.precision):
            x = self.transform.image(image)
            x = x.contiguous(memory_format=torch.channels_last if self.channels_last else torch.contiguous_format)
            query = self.network.encode_key(x)
            probs = self.policy.segment(query, self.transform) if propagate else None
            if new_ids:
                probs = self._merge_new(probs, new_ids, new_mask)
            if write is not None:
                self.policy.memorize(t, x, query, probs, permanent=(write == PERMANENT))
                if write == PERMANENT:
                    self.last_write = t
        return self.transform.restore(probs.float())

    def _merge_new(self, probs, new_ids, new_mask):
        """Objects given at this frame join the probabilities (the policy decides how)."""
        ids = torch.tensor(new_ids, device=self.device).view(-1, 1, 1)
        new = self.transform.masks((new_mask.unsqueeze(0) == ids).float())
        self.object_ids.extend(new_ids)
        self.policy.add_objects(len(new_ids))
        return self.policy.merge_new(probs, new)

    def stats(self):
        return self.policy.stats()
