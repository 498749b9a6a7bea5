"""STCN as stage functions: encode_key, encode_value, decode. No memory policy lives here.

The same modules serve training (``model.stcn.training.train_forward``: full softmax over memory, with
gradients) and inference (``inference``: top-k read-out under ``torch.inference_mode``).
"""
import torch
import torch.nn as nn

from model.checkpoint import register_architecture
from model.encoders import KeyEncoder, KeyFeatures, ValueEncoder
from model.modules import Decoder, KeyProjection, like_format


def others_channel(object_probs):
    """For every object, the sum of the other objects' probabilities (zeros when K = 1). dim 1 = K."""
    if object_probs.shape[1] == 1:
        return torch.zeros_like(object_probs)
    return object_probs.sum(dim=1, keepdim=True) - object_probs


class STCN(nn.Module):
    """Space-Time Correspondence Network (Cheng et al., NeurIPS 2021)."""

    key_channels = 64
    value_channels = 512

    def __init__(self, single_object=False, pretrained=False):
        super().__init__()
        self.single_object = single_object
        self.key_encoder = KeyEncoder(pretrained=pretrained)
        self.value_encoder = ValueEncoder(single_object=single_object, pretrained=pretrained)
        self.key_proj = KeyProjection(1024, self.key_channels)
        self.key_comp = nn.Conv2d(1024, 512, 3, padding=1)
        self.decoder = Decoder(in_channels=1024)
        nn.init.orthogonal_(self.key_proj.key_proj.weight)
        nn.init.zeros_(self.key_proj.key_proj.bias)

    def encode_key(self, image):
        """Normalised image (B, 3, H, W), H and W multiples of 16 -> KeyFeatures."""
        f16, f8, f4 = self.key_encoder(image)
        return KeyFeatures(self.key_proj(f16), self.key_comp(f16), f16, f8, f4)

    def encode_value(self, image, f16, object_probs):
        """Memory value of every object of a frame.

        image (B, 3, H, W) normalised; f16 (B, 1024, h, w) of the same frame; object_probs
        (B, K, H, W) soft masks (never an argmax). Returns (B, K, 512, h, w).
        """
        b, k = object_probs.shape[:2]
        masks = object_probs.reshape(b * k, 1, *object_probs.shape[2:])
        others = None
        if not self.single_object:
            others = others_channel(object_probs).reshape(b * k, 1, *object_probs.shape[2:])

        def per_object(x):
            return like_format(x.repeat_interleave(k, dim=0), x)

        value = self.value_encoder(per_object(image), per_object(f16), masks, others)
        return value.view(b, k, *value.shape[1:])

    def decode(self, readout, query):
        """Read-out (B, K, 512, h, w) + the query's KeyFeatures -> per-object logits (B, K, H, W)."""
        b, k = readout.shape[:2]
        # the decoder's input is cat([read-out, f16_thin]); f16_thin and the skip features f8/f4 are
        # the frame's, convolved once for its K objects
        logits = self.decoder(readout.flatten(0, 1), query.f8, query.f4, shared=query.f16_thin)
        return logits.view(b, k, *logits.shape[2:])


def build_network(single_object=False, pretrained=False):
    """A randomly initialised (or ImageNet-initialised, ``pretrained=True``) STCN network.

    State-dict names and shapes are those of the released checkpoints.
    """
    return STCN(single_object=single_object, pretrained=pretrained)


def set_train_mode(network):
    """Train mode with every BatchNorm kept in eval mode (running statistics), as STCN trains."""
    network.train()
    for module in network.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    return network


# STCN is the fallback architecture: a state dict no other family recognises loads as STCN.
register_architecture("stcn", build=build_network)
