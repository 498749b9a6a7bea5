"""RDE-VOS memory (Li et al., CVPR 2022): a constant-size memory around a recurrent dynamic embedding.

Per group of objects given at the same frame the memory holds three slots of one frame's size:
GT (the frame where the objects were given), RDE (starts as GT; every memory frame updates it by the
SAM, ``network.update_memory``) and L (the latest memory frame, empty until the first update). A
query reads the concatenation of the slots named by the layout, with one top-k softmax over all their
positions (a slot listed twice counts twice). Nothing grows with the video's length.

Groups realise the published YouTubeVOS protocol (one memory per object, objects that start together
share identical keys): at an annotated frame every known group receives the frame as a normal
update (it becomes its L) and the new objects start a group of their own with it as GT.
"""
import torch

from inference.policy import PERMANENT, MemoryPolicy, register_policy
from model.memory_readout import read_memory

# layout -> (slots read before the group's first RDE update, slots read after it); the paper's
# Table 5 name in the comment. Before the first update the RDE slot holds GT itself.
LAYOUTS = {
    "two-frames-compress": (("gt", "gt"), ("rde", "last", "gt", "gt")),   # 2F & L & RDE (default)
    "compress": (("gt",), ("rde",)),                                        # RDE
    "gt-compress": (("gt", "gt"), ("rde", "gt")),                           # First frame & RDE
    "last-compress": (("gt",), ("rde", "last")),                            # Latest frame & RDE
    "two-frames": (("gt",), ("last", "gt", "gt")),                          # First frame x2 & latest frame
    "last": (("gt",), ("last",)),                                           # Latest frame
    "gt": (("gt",), ("gt",)),                                               # First frame
}
DEFAULT_LAYOUT = "two-frames-compress"
TOP_K = 40       # paper Sec. 4.2: top-k 40 on all datasets
MEM_EVERY = 3    # paper Sec. 4.2 / Table 5: theta = 3 on DAVIS

# Per-benchmark settings. YouTubeVOS: theta = 4 (paper Sec. 4.2); top-k 20 is the released
# evaluation command (the paper says 40).
RDE_PRESETS = {
    "davis": {"layout": DEFAULT_LAYOUT, "top_k": TOP_K, "mem_every": MEM_EVERY},
    "youtube": {"layout": DEFAULT_LAYOUT, "top_k": 20, "mem_every": 4},
}


class _Group:
    """Memory of the objects given at one frame. Keys (1, Ck, h, w); values (1, Kg, Cv, h, w)."""

    def __init__(self, objects, t, key, value):
        self.objects = objects
        self.gt_frame = t
        self.slots = {"gt": (key, value), "rde": (key, value)}
        self.updates = []        # frames that updated this group (each is also its L)

    @property
    def last_frame(self):
        return self.updates[-1] if self.updates else None


@register_policy("rde")
class RDEMemory(MemoryPolicy):
    """Constant-size memory: GT, the SAM-maintained RDE and the latest memory frame, per layout.

    layout: one of ``LAYOUTS``; top_k: positions kept per query position over the whole memory;
    mem_every: theta, the RDE update interval (frame t is a memory frame when t - last >= theta,
    never the last frame); include_last: every frame is a full update (theta = 1).
    """

    PRESETS = RDE_PRESETS   # eval_davis.py / eval_youtube.py start from these (evaluation/runner.py)

    def __init__(self, network, layout=DEFAULT_LAYOUT, top_k=TOP_K, mem_every=MEM_EVERY, include_last=False):
        super().__init__(network, mem_every=mem_every, include_last=include_last)
        if layout not in LAYOUTS:
            raise ValueError(f"unknown RDE layout {layout!r}; choose one of {sorted(LAYOUTS)}")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.layout = layout
        self.uses_rde = any("rde" in slots for slots in LAYOUTS[layout])
        if self.uses_rde and not hasattr(network, "update_memory"):
            raise ValueError(f"layout {layout!r} needs an RDE network with the SAM weights "
                             f"({type(network).__name__} has none); load an RDE-VOS checkpoint")
        self.top_k = top_k
        self.groups = []

    def write_kind(self, t, last_write):
        # RDE has no temporary entry: with include_last every frame is a full SAM update
        if self.include_last or t - last_write >= self.mem_every:
            return PERMANENT
        return None

    def write(self, t, query, value, permanent=True):
        key, value = query.key, value[None]
        known = sum(len(g.objects) for g in self.groups)
        for group in self.groups:
            self._update(group, t, key, value[:, group.objects])
        if value.shape[1] > known:
            self.groups.append(_Group(list(range(known, value.shape[1])), t, key, value[:, known:]))

    def _update(self, group, t, key, value):
        if self.uses_rde:
            group.slots["rde"] = self.network.update_memory(*group.slots["rde"], key, value)
        group.slots["last"] = (key, value)
        group.updates.append(t)

    def _slots(self, group):
        before, after = LAYOUTS[self.layout]
        return after if group.updates else before

    def read(self, query):
        h, w = query.key.shape[-2:]
        readout = None
        for group in self.groups:
            slots = [group.slots[name] for name in self._slots(group)]
            keys = torch.cat([k.flatten(2) for k, _ in slots], dim=2)       # 1, Ck, n*h*w
            values = torch.cat([v.flatten(3) for _, v in slots], dim=3)     # 1, Kg, Cv, n*h*w
            out, _ = read_memory(keys, values, query.key.flatten(2), top_k=self.top_k)
            if readout is None:
                readout = out.new_empty(self.num_objects, out.shape[2], h, w)
            readout[group.objects] = out[0].view(-1, out.shape[2], h, w)
        return readout

    def stats(self):
        """memory_frames: frame-sized blocks a query reads (max over groups, GT counted as often as read);
        memory_features: positions read per query, summed over groups; stored_features: positions held."""
        positions = [g.slots["gt"][0].shape[-2] * g.slots["gt"][0].shape[-1] for g in self.groups]
        blocks = [len(self._slots(g)) for g in self.groups]
        return {"memory_frames": max(blocks, default=0),
                "memory_features": sum(b * p for b, p in zip(blocks, positions)),
                "stored_features": sum(len({id(k) for k, _ in g.slots.values()}) * p
                                       for g, p in zip(self.groups, positions)),
                "rde_updates": max((len(g.updates) for g in self.groups), default=0)}
