"""Inference: one frame loop (``core``), memory policies behind one interface (``policy``).

    from inference import segment_video
    for probs in segment_video(network, frames, first_mask):   # (K+1) x H x W per frame
        ...
"""
from . import every_k  # noqa: F401  (registers "every5")
from . import swem  # noqa: F401  (registers "swem")
from . import lfu  # noqa: F401  (registers "lfu")
from . import rde  # noqa: F401  (registers "rde")
from .api import object_ids, segment_video
from .core import InferenceCore
from .labels import ObjectChannels
from .policy import MEMORY_POLICIES, MemoryPolicy, register_policy

__all__ = ["InferenceCore", "MEMORY_POLICIES", "MemoryPolicy", "ObjectChannels", "object_ids",
           "register_policy", "segment_video"]
