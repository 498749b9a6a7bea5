"""The small interface every memory policy implements, and the registry of policies by name.

The frame loop (``inference.core.InferenceCore``) owns frames, padding, object ids and the
DAVIS/YouTubeVOS protocols; a policy owns only what is remembered and how it is read:

- ``write_kind(t, last_write)``: should frame t (already segmented) be written, and how
- ``write(t, query, value, permanent)``: store frame t's key features and per-object values
- ``read(query)``: memory read-out for every known object, (K, Cv, h, w)
- ``add_objects(count)``: objects given at the current frame join (their first write follows)
- ``stats()``: sizes for logs and benchmarks (at least ``memory_frames`` and ``memory_features``)

The size at which an evaluator hands frames to a policy is the policy's choice too:
``evaluator_short_side(benchmark, options)`` (the rules are in ``inference.frame_size``).

Hooks with STCN's behaviour as default, for networks that prepare frames or memorise differently
(SWEM): ``make_transform`` (frame preparation), ``segment`` (read-out, decoding, aggregation),
``merge_new`` (how objects given at a frame join the probabilities) and ``memorize`` (value
encoding and write).
"""
import torch

from inference.frame_size import evaluator_short_side
from inference.transforms import PadToMultiple
from model.aggregate import aggregate

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

    @classmethod
    def resizes_frames_itself(cls, options):
        """Whether the policy, built with ``options``, resizes frames to its own working size: a
        ``work_size`` option that is not None (SWEM: 480 x 864 on DAVIS, its YouTubeVOS rule)."""
        return options.get("work_size") is not None

    @classmethod
    def evaluator_short_side(cls, benchmark, options):
        """Shorter side (pixels, 0 = full size) an evaluator resizes ``benchmark``'s frames to before
        this policy with ``options`` sees them: 480 on YouTubeVOS and full size on DAVIS (STCN's
        protocol, every5/lfu/rde), full size for a policy that resizes frames itself (SWEM)."""
        return evaluator_short_side(benchmark, cls.resizes_frames_itself(options))

    def add_objects(self, count):
        self.num_objects += count

    def write_kind(self, t, last_write):
        if t - last_write >= self.mem_every:
            return PERMANENT
        return TEMPORARY if self.include_last else None

    def make_transform(self, height, width):
        """Frame preparation for an H x W video: ``image``, ``masks``, ``restore`` and ``size``."""
        return PadToMultiple(height, width)

    def segment(self, query, transform):
        """Aggregated probabilities (1 + K, H', W') of the known objects in the query frame."""
        readout = self.read(query)
        return aggregate(torch.sigmoid(self.network.decode(readout[None], query)[0]).float(), dim=0)

    def merge_new(self, probs, new_masks):
        """Objects given at this frame (``new_masks`` K' x H' x W', prepared by the transform) join
        ``probs`` (1 + K, H', W', or None): their masks replace every known object's probability
        inside their area, and the result is aggregated again."""
        if probs is None:
            return aggregate(new_masks, dim=0)
        outside = (new_masks.sum(dim=0, keepdim=True) <= 0.5).float()
        return aggregate(torch.cat([probs[1:] * outside, new_masks], dim=0), dim=0)

    def memorize(self, t, image, query, probs, permanent=True):
        """Write frame t: ``image`` as prepared by the transform, its KeyFeatures and probabilities."""
        value = self.network.encode_value(image, query.f16, probs[None, 1:].to(image.dtype))[0]
        self.write(t, query, value, permanent=permanent)

    def write(self, t, query, value, permanent=True):
        raise NotImplementedError

    def read(self, query):
        raise NotImplementedError

    def stats(self):
        raise NotImplementedError
