"""Inference: one frame loop (``core``), memory policies behind one interface (``policy``).

    from inference import segment_video
    for probs in segment_video(network, frames, first_mask):   # (K+1) x H x W per frame
        ...
"""
from inference import every_k  # noqa: F401  (registers "every5")
from inference import lfu  # noqa: F401  (registers "lfu")
from inference import rde  # noqa: F401  (registers "rde")
from inference import swem  # noqa: F401  (registers "swem")
from inference.api import object_ids, segment_video
from inference.core import InferenceCore
from inference.labels import ObjectChannels
from inference.policy import MEMORY_POLICIES, MemoryPolicy, register_policy

__all__ = ["InferenceCore", "MEMORY_POLICIES", "MemoryPolicy", "ObjectChannels", "object_ids",
           "register_policy", "segment_video"]
