"""SWEM (Lin et al., CVPR 2022): its own network (``network``), the weighted EM that keeps a fixed
number of bases per object (``em``), its training forward (``training``) and losses (``losses``).
"""
from model.swem.network import SWEM, build_swem
from model.swem.training import swem_train_forward

__all__ = ["SWEM", "build_swem", "swem_train_forward"]
