"""STCN's memory policy: every mem_every-th frame joins the memory (paper: every 5th, no last frame)."""
import torch

from inference.banked import BankedPolicy
from inference.policy import register_policy

TOP_K = 20       # STCN paper, Sec. 5: top-k filtering with k = 20
MEM_EVERY = 5    # STCN paper, Sec. 3.3: every 5th frame is a memory frame


@register_policy("every5")
class EveryKMemory(BankedPolicy):
    """Keeps frame 0 (and every given frame) plus every mem_every-th frame; grows with the video.

    ``max_frames`` optionally caps the memory: when a write would exceed it, the oldest memory frame
    that is not a given (annotated) frame is dropped first (simple baseline for long videos).
    """

    def __init__(self, network, top_k=TOP_K, mem_every=MEM_EVERY, include_last=False, max_frames=None):
        super().__init__(network, top_k=top_k, mem_every=mem_every, include_last=include_last)
        if max_frames is not None and max_frames < 1:
            raise ValueError(f"max_frames must be >= 1, got {max_frames}")
        self.max_frames = max_frames

    def _write_permanent(self, t, key, value):
        super()._write_permanent(t, key, value)
        if self.max_frames is not None:
            self._enforce_cap()

    def _enforce_cap(self):
        frames = torch.unique(self.bank.frames).tolist()
        droppable = [f for f in frames if f not in self.bank.given_frames]
        while len(frames) > self.max_frames and droppable:
            oldest = droppable.pop(0)
            self.bank.keep(self.bank.frames != oldest)
            frames.remove(oldest)

    def stats(self):
        return {"memory_frames": self.bank.num_frames + (self.bank.temporary is not None),
                "memory_features": self.bank.size + (0 if self.bank.temporary is None
                                                      else self.bank.temporary[0].shape[1])}
