"""RDE-VOS (Li et al., CVPR 2022): STCN plus the SAM memory compression (``network``, ``sam``), its
training forward on STM and SAM patterns (``training``) and its losses L_seg, L_MC, L_UG (``losses``).
"""
from model.rde.network import RDE, SAM_PREFIX, build_rde, is_rde_state_dict
from model.rde.training import rde_train_forward

__all__ = ["RDE", "SAM_PREFIX", "build_rde", "is_rde_state_dict", "rde_train_forward"]
