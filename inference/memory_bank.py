"""Key/value storage with top-k read-out, shared by the every-k and LFU policies.

Keys are object-agnostic, so one affinity serves every object. Objects may join later (YouTubeVOS):
an object reads only the positions written since it was given, so objects are grouped by their
first position and each group gets its own top-k over its slice of the memory.
"""
import torch

from model.memory_readout import l2_affinity, readout_topk, topk_softmax


class MemoryBank:
    def __init__(self, top_k=20):
        self.top_k = top_k
        self.keys = None          # Ck, N
        self.values = None        # K, Cv, N (zeros for objects before their first write)
        self.frames = None        # N: the frame each position was written from
        self.object_start = []    # per object: first position it may read
        self.temporary = None     # (key Ck x n, value K x Cv x n): the optional "last frame" entry
        self.given_frames = set()  # frames whose write brought new objects: annotations

    @property
    def size(self):
        return 0 if self.keys is None else self.keys.shape[1]

    @property
    def num_frames(self):
        return 0 if self.frames is None else int(torch.unique(self.frames).numel())

    def _grow_objects(self, count):
        """Objects new since the last write start reading at the next position."""
        while len(self.object_start) < count:
            self.object_start.append(self.size)
        if self.values is not None and self.values.shape[0] < count:
            pad = self.values.new_zeros(count - self.values.shape[0], *self.values.shape[1:])
            self.values = torch.cat([self.values, pad], dim=0)

    def append(self, t, key, value):
        """key (Ck, n) and value (K, Cv, n) of frame t, K = every object known now."""
        if value.shape[0] > len(self.object_start):
            self.given_frames.add(t)
        self._grow_objects(value.shape[0])
        frames = torch.full((key.shape[1],), t, dtype=torch.long, device=key.device)
        if self.keys is None:
            self.keys, self.values, self.frames = key, value, frames
        else:
            self.keys = torch.cat([self.keys, key], dim=1)
            self.values = torch.cat([self.values, value], dim=2)
            self.frames = torch.cat([self.frames, frames])
        self.temporary = None

    def set_temporary(self, key, value):
        self._grow_objects(value.shape[0])
        self.temporary = (key, value)

    def keep(self, mask):
        """Drop every position where ``mask`` (N,) is False; object starts shift accordingly."""
        removed_before = torch.cumsum((~mask).long(), 0)
        self.object_start = [s - (int(removed_before[s - 1]) if s > 0 else 0) for s in self.object_start]
        self.keys, self.values, self.frames = self.keys[:, mask], self.values[:, :, mask], self.frames[mask]

    def groups(self):
        """{first position: [object indices]} for the objects known to the memory."""
        out = {}
        for obj, start in enumerate(self.object_start):
            out.setdefault(start, []).append(obj)
        return out

    def read(self, query_key):
        """query_key (Ck, M) -> (read-out (K, Cv, M), [(start, objects, top-k indices (k, M))]).

        Indices refer to positions start + i of the permanent memory; positions past its end
        belong to the temporary entry.
        """
        keys, values = self.keys, self.values
        if self.temporary is not None:
            keys = torch.cat([keys, self.temporary[0]], dim=1)
            values = torch.cat([values, self.temporary[1]], dim=2)
        readout = values.new_empty(values.shape[0], values.shape[1], query_key.shape[1])
        used = []
        for start, objects in self.groups().items():
            affinity = l2_affinity(keys[None, :, start:], query_key[None])
            weights, indices = topk_softmax(affinity, self.top_k)
            readout[objects] = readout_topk(weights, indices, values[None, objects, :, start:])[0]
            used.append((start, objects, indices[0]))
        return readout, used
