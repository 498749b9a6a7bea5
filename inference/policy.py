"""The small interface every memory policy implements, and the registry of policies by name.

The frame loop (``inference.core.InferenceCore``) owns frames, padding, object ids and the
DAVIS/YouTubeVOS protocols; a policy owns only what is remembered and how it is read:

- ``write_kind(t, last_write)``: should frame t (already segmented) be written, and how
- ``write(t, query, value, permanent)``: store frame t's key features and per-object values
- ``read(query)``: memory read-out for every known object, (K, Cv, h, w)
- ``add_objects(count)``: objects given at the current frame join (their first write follows)
- ``stats()``: sizes for logs and benchmarks (at least ``memory_frames`` and ``memory_features``)
"""
PERMANENT = "permanent"
TEMPORARY = "temporary"

MEMORY_POLICIES = {}


def register_policy(name):
    def decorate(cls):
        cls.name = name
        MEMORY_POLICIES[name] = cls
        return cls
    return decorate


def make_policy(name, network, **options):
    if name not in MEMORY_POLICIES:
        raise ValueError(f"unknown memory policy {name!r}; choose one of {sorted(MEMORY_POLICIES)}")
    return MEMORY_POLICIES[name](network, **options)


class MemoryPolicy:
    """Base class: every-``mem_every`` permanent writes counted from the last permanent write, and an
    optional temporary entry for every other frame (``include_last``)."""

    name = "base"

    def __init__(self, network, mem_every=5, include_last=False):
        if mem_every < 1:
            raise ValueError(f"mem_every must be >= 1, got {mem_every}")
        self.network = network
        self.mem_every = mem_every
        self.include_last = include_last
        self.num_objects = 0

    def add_objects(self, count):
        self.num_objects += count

    def write_kind(self, t, last_write):
        if t - last_write >= self.mem_every:
            return PERMANENT
        return TEMPORARY if self.include_last else None

    def write(self, t, query, value, permanent=True):
        raise NotImplementedError

    def read(self, query):
        raise NotImplementedError

    def stats(self):
        raise NotImplementedError
