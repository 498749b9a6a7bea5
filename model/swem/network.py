"""SWEM (Lin et al., CVPR 2022) as stage functions, with the published state-dict names.

Differences from STCN's network: frames enter as RGB in [0, 1] and each encoder normalises with
its own registered buffers (``key_encoder.mean/std``, ``value_encoder.mean/std``); the key has 128
channels; the read-out comes from per-object bases (``model.swem.em``) and is fused with the
compressed query feature and the top-l similarity feature by a gated linear unit
(``swem_core.fusion_layer``); the decoder sees that 512-ch context only and resizes its logits
straight to the requested output size.
"""
import torch
import torch.nn as nn

from model.checkpoint import register_architecture
from model.encoders import KeyEncoder, KeyFeatures, ValueEncoder
from model.modules import Decoder, KeyProjection
from model.normalization import IMAGENET_MEAN, IMAGENET_STD
from model.stcn.network import STCN
from model.swem.em import TAU, TOP_L, match_bases


class _Normalizing:
    """Mixin: ImageNet normalisation by registered (state-dict) buffers, as the published encoders do."""

    def _register_normalization(self):
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def normalize(self, image):
        return (image - self.mean) / self.std


class NormalizingKeyEncoder(_Normalizing, KeyEncoder):
    def __init__(self, pretrained=False):
        super().__init__(pretrained=pretrained)
        self._register_normalization()

    def forward(self, image):
        return super().forward(self.normalize(image))


class NormalizingValueEncoder(_Normalizing, ValueEncoder):
    def __init__(self, single_object=False, pretrained=False):
        super().__init__(single_object=single_object, pretrained=pretrained)
        self._register_normalization()

    def forward(self, image, key_f16, mask, others=None):
        return super().forward(self.normalize(image), key_f16, mask, others)


class GatedFusion(nn.Module):
    """Gated linear unit: conv_f(x) * sigmoid(conv_a(x)), both 3x3 with orthogonal init."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.layer_f = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.layer_a = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        for conv in (self.layer_f, self.layer_a):
            nn.init.orthogonal_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, x):
        return self.layer_f(x) * torch.sigmoid(self.layer_a(x))


class SWEMCore(nn.Module):
    """Matching of a query against per-object bases and the fusion of what it reads (published ``swem_core``).

    Each object is matched with its own bases (``match_bases``); the fusion layer, a gated linear unit,
    takes cat([read-out (512), the query's key_comp feature (512), similarity feature S (2 top_l)]),
    1152 channels with top_l 64, and gives the decoder's 512-channel context.

    Further reading: SWEM.md §2.8 (project reference notes, not part of this repository).
    """

    def __init__(self, value_channels=512, query_channels=512, top_l=TOP_L):
        super().__init__()
        self.top_l = top_l
        self.fusion_layer = GatedFusion(value_channels + query_channels + 2 * top_l, value_channels)

    def forward(self, query_key, f16_thin, bases, tau=TAU):
        """query_key (B, Ck, h, w), f16_thin (B, 512, h, w) -> context (B, K, 512, h, w)."""
        b, _, h, w = query_key.shape
        readout, similarity = match_bases(query_key.flatten(2), bases, tau=tau, top_l=self.top_l)
        k = readout.shape[1]
        dtype = f16_thin.dtype      # the bases may be kept in a wider dtype than the network
        x = torch.cat([readout.reshape(b * k, -1, h, w).to(dtype), f16_thin.repeat_interleave(k, dim=0),
                       similarity.reshape(b * k, -1, h, w).to(dtype)], dim=1)
        context = self.fusion_layer(x)
        return context.view(b, k, *context.shape[1:])


class SWEM(nn.Module):
    """Sequential Weighted EM network: stage functions shared by training and inference."""

    key_channels = 128
    value_channels = 512

    def __init__(self, single_object=False, pretrained=False, top_l=TOP_L):
        super().__init__()
        self.single_object = single_object
        self.key_encoder = NormalizingKeyEncoder(pretrained=pretrained)
        self.value_encoder = NormalizingValueEncoder(single_object=single_object, pretrained=pretrained)
        self.key_proj = KeyProjection(1024, self.key_channels)
        self.key_comp = nn.Conv2d(1024, 512, 3, padding=1)
        self.swem_core = SWEMCore(self.value_channels, 512, top_l=top_l)
        self.decoder = Decoder(in_channels=self.value_channels)
        nn.init.orthogonal_(self.key_proj.key_proj.weight)
        nn.init.zeros_(self.key_proj.key_proj.bias)

    @property
    def top_l(self):
        return self.swem_core.top_l

    def encode_key(self, image):
        """RGB in [0, 1] (B, 3, H, W), H and W multiples of 16 -> KeyFeatures (key = raw 128-d key)."""
        f16, f8, f4 = self.key_encoder(image)
        return KeyFeatures(self.key_proj(f16), self.key_comp(f16), f16, f8, f4)

    def encode_value(self, image, f16, object_probs):
        """RGB in [0, 1] (B, 3, H, W), f16 of that frame, soft masks (B, K, H, W) -> (B, K, 512, h, w).

        Same per-object batching and "other objects" channel as STCN's value encoder.
        """
        return STCN.encode_value(self, image, f16, object_probs)

    def read(self, query, bases, tau=TAU):
        """Fused context (B, K, 512, h, w) of a query (KeyFeatures) from per-object ``bases``."""
        return self.swem_core(query.key, query.f16_thin, bases, tau=tau)

    def decode(self, context, query, out_size=None):
        """Context (B, K, 512, h, w) + query KeyFeatures -> logits (B, K, H, W).

        ``out_size`` (H, W): the logits are resized straight to it (the original frame size at
        inference); default: the input resolution of the key encoder (16h, 16w).
        """
        b, k = context.shape[:2]
        # the skip features f8/f4 are shared by the K objects of a frame
        logits = self.decoder(context.flatten(0, 1), query.f8, query.f4, out_size=out_size)
        return logits.view(b, k, *logits.shape[2:])


def build_swem(single_object=False, pretrained=False, top_l=TOP_L):
    return SWEM(single_object=single_object, pretrained=pretrained, top_l=top_l)


register_architecture("swem", build=build_swem,
                      matches=lambda sd: any(k.startswith("swem_core.") for k in sd))
