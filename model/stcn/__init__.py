"""STCN (Cheng et al., NeurIPS 2021): the network (``network``) and its training forward (``training``).

Key encoder ResNet-50 to layer3 with a 64-channel key projection, value encoder ResNet-18 fused with
the key features, L2-similarity top-k read-out at inference, full softmax in training.
"""
from model.stcn.network import STCN, build_network, others_channel, set_train_mode
from model.stcn.training import train_forward

__all__ = ["STCN", "build_network", "others_channel", "set_train_mode", "train_forward"]
