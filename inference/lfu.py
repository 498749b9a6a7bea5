"""LFU adaptive memory (Pourganjalikhan & Poullis, "Adaptive Memory Management for Video Object
Segmentation"): a fixed-size memory on any STCN checkpoint, no retraining.

Frames are written every ``mem_every`` frames exactly as in every-5, but the memory holds at most
``capacity`` frames' worth of key/value features (``capacity * h * w`` positions at stride 16). Every
feature keeps an *index* (how many times it was among the top-k matches of a query position; every
query position of every segmented frame counts) and an *age* (frames since it entered memory). When a
write would exceed the capacity, the features with the lowest score ``index / age`` are removed first,
just enough to make room. One counter set serves all objects (keys are object-agnostic).

Choices the paper leaves open, made here:
- Frame-0 / given-frame features are NOT protected by default (``protect_given=False``): the paper
  ranks every feature alike, and its Fig. 4 failure case (an occluded object's features, frame 0's
  included, got evicted) shows they are not kept. ``protect_given=True`` evicts given-frame features
  only after all others; capacity is a hard bound, so they go too when they alone exceed it. (With
  capacity 2 on a DAVIS video this keeps frame 0 plus the latest write: first-and-latest.)
- New features start with index 0, and are never evicted by the write that adds them (the paper
  removes old features "to accommodate new features"). Age is counted in frame indices, t - t_written,
  so it is >= 1 for every candidate and skipped frames (YouTubeVOS) age features too.
- Ties in score go oldest-first (lower memory position = earlier write; within a frame, raster order).
- Counts come from the top-k indices the read-out actually used. With a late object (YouTubeVOS) the
  memory is read in groups (objects given at the same frame share one top-k over the positions
  written since); each group's top-k counts, so a feature used by two groups for one query position
  counts twice. The optional temporary entry (``include_last``) is neither counted nor capped.
"""
import torch

from inference.banked import BankedPolicy
from inference.every_k import MEM_EVERY, TOP_K
from inference.policy import register_policy

CAPACITY = 2  # AMM paper, Sec. V: memory of "two frames worth of features" (4: best trade-off, Fig. 6)


@register_policy("lfu")
class LFUMemory(BankedPolicy):
    """Fixed-size memory of ``capacity`` frames' worth of features, least-frequently-used evicted."""

    def __init__(self, network, capacity=CAPACITY, top_k=TOP_K, mem_every=MEM_EVERY, include_last=False,
                 protect_given=False):
        super().__init__(network, top_k=top_k, mem_every=mem_every, include_last=include_last)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity is counted in frames' worth of features and must be an integer "
                             f">= 1, got {capacity!r}")
        if not isinstance(protect_given, bool):
            raise ValueError(f"protect_given must be True or False, got {protect_given!r}")
        self.capacity = capacity
        self.protect_given = protect_given
        self.features_per_frame = None
        self.hits = None              # (N,) int64: the LFU index of every memory position

    @property
    def capacity_features(self):
        return None if self.features_per_frame is None else self.capacity * self.features_per_frame

    def _write_permanent(self, t, key, value):
        if self.features_per_frame is None:
            self.features_per_frame = key.shape[1]
        excess = self.bank.size + key.shape[1] - self.capacity_features
        if excess > 0:
            self._evict(self.eviction_order(t)[:excess])
        super()._write_permanent(t, key, value)
        fresh = torch.zeros(key.shape[1], dtype=torch.long, device=key.device)
        self.hits = fresh if self.hits is None else torch.cat([self.hits, fresh])

    def scores(self, t):
        """index / age of every memory position at frame t (t later than every stored write)."""
        age = (t - self.bank.frames).double()
        return self.hits.double() / age

    def eviction_order(self, t):
        """Memory positions in the order they are evicted at frame t: (protected last,) lowest score
        first, ties oldest first."""
        order = torch.sort(self.scores(t), stable=True).indices   # stable: ties keep position order
        if self.protect_given and self.bank.given_frames:
            given = torch.tensor(sorted(self.bank.given_frames), device=self.bank.frames.device)
            protected = torch.isin(self.bank.frames[order], given)
            order = order[torch.sort(protected.to(torch.uint8), stable=True).indices]
        return order

    def _evict(self, positions):
        keep = torch.ones(self.bank.size, dtype=torch.bool, device=positions.device)
        keep[positions] = False
        self.bank.keep(keep)
        self.hits = self.hits[keep]

    def read(self, query):
        h, w = query.key.shape[-2:]
        readout, used = self.bank.read(query.key[0].flatten(1))
        size = self.bank.size
        for start, _, indices in used:
            positions = indices.flatten() + start
            positions = positions[positions < size]   # past the end: the temporary entry
            self.hits += torch.bincount(positions, minlength=size)
        return readout.view(*readout.shape[:2], h, w)

    def stats(self):
        temporary = 0 if self.bank.temporary is None else self.bank.temporary[0].shape[1]
        return {"memory_frames": self.bank.num_frames + (temporary > 0),
                "memory_features": self.bank.size + temporary,
                "capacity_features": self.capacity_features}
