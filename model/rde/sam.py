"""The spatio-temporal aggregation module (SAM) of RDE-VOS (Li et al., CVPR 2022, Sec. 3.3).

A SAM fuses the previous recurrent dynamic embedding (RDE) with the embedding of the newest memory
frame: extracting (non-local block), enhancing (ASPP with a residual), squeezing (a 2x3x3 conv over
the two time slots). Inputs are (B, C, 2, h, w) with time slot 0 = previous RDE, slot 1 = new frame.
Module names follow the released checkpoints (``mem_compress.*``).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

from model.precision import at_least_float32, full_precision

ASPP_DILATIONS = (2, 4, 6)   # the three atrous branches beside the 1x1x1 one


class NonLocalBlock(nn.Module):
    """Embedded dot product without softmax: z = W(theta(x)^T phi(x_pool) g(x_pool) / N) + x.

    N is the number of *pooled* positions (both time slots), as in the released code (the paper's
    C(x) counts unpooled ones). Pooling is 2x2 max-pooling in space only, with floor.
    """

    def __init__(self, channels):
        super().__init__()
        inner = channels // 2
        self.theta = nn.Conv3d(channels, inner, 1)
        self.phi = nn.Sequential(nn.Conv3d(channels, inner, 1), nn.MaxPool3d((1, 2, 2), stride=(1, 2, 2)))
        self.g = nn.Sequential(nn.Conv3d(channels, inner, 1), nn.MaxPool3d((1, 2, 2), stride=(1, 2, 2)))
        self.W = nn.Conv3d(inner, channels, 1)

    def forward(self, x):
        if x.shape[-2] < 2 or x.shape[-1] < 2:
            raise ValueError(f"the SAM needs at least 2x2 positions at stride 16, got {tuple(x.shape[-2:])}")
        b = x.shape[0]
        theta = self.theta(x).flatten(2)                 # B, C/2, n
        phi = self.phi(x).flatten(2)                     # B, C/2, N
        g = self.g(x).flatten(2)                         # B, C/2, N
        y = _non_local_sum(theta, phi, g).to(theta.dtype)          # B, C/2, n
        return self.W(y.reshape(b, -1, *x.shape[2:])) + x


@full_precision
def _non_local_sum(theta, phi, g):
    """theta^T (phi g^T) / N, which equals (theta^T phi) g / N but never builds the n x N matrix.
    At least float32: under fp16 autocast the sum over N positions can exceed 65504."""
    theta, phi, g = at_least_float32(theta), at_least_float32(phi), at_least_float32(g)
    context = phi @ g.transpose(1, 2) / phi.shape[-1]          # B, C/2, C/2
    return (theta.transpose(1, 2) @ context).transpose(1, 2)


class ASPPBranch(nn.Module):
    """Conv3d (kernel depth 1, no bias) + ReLU, under the published name ``atrous_conv``."""

    def __init__(self, channels, out_channels, dilation):
        super().__init__()
        if dilation == 1:
            self.atrous_conv = nn.Conv3d(channels, out_channels, 1, bias=False)
        else:
            self.atrous_conv = nn.Conv3d(channels, out_channels, (1, 3, 3), padding=(0, dilation, dilation),
                                         dilation=(1, dilation, dilation), bias=False)

    def forward(self, x):
        return F.relu(self.atrous_conv(x))


class ASPP(nn.Module):
    """Four parallel branches (1x1, atrous 2, 4, 6; C/4 channels each), concatenated, 1x3x3 conv + ReLU.

    Every convolution acts on each time slot separately (kernel depth 1).
    """

    def __init__(self, channels):
        super().__init__()
        branch = channels // 4
        self.aspp1 = ASPPBranch(channels, branch, 1)
        self.aspp2 = ASPPBranch(channels, branch, ASPP_DILATIONS[0])
        self.aspp3 = ASPPBranch(channels, branch, ASPP_DILATIONS[1])
        self.aspp4 = ASPPBranch(channels, branch, ASPP_DILATIONS[2])
        self.conv1 = nn.Conv3d(channels, channels, (1, 3, 3), padding=(0, 1, 1), bias=False)

    def forward(self, x):
        x = torch.cat([self.aspp1(x), self.aspp2(x), self.aspp3(x), self.aspp4(x)], dim=1)
        return F.relu(self.conv1(x))


class SAM(nn.Module):
    """Extracting + enhancing: s = z + ASPP(z) with z = NonLocal(x). Keeps (B, C, 2, h, w)."""

    def __init__(self, channels):
        super().__init__()
        self.non_local = NonLocalBlock(channels)
        self.conv1 = ASPP(channels)

    def forward(self, x):
        z = self.non_local(x)
        return z + self.conv1(z)


class MemoryCompression(nn.Module):
    """One SAM + squeeze conv for keys (C = 64) and one for values (C = 512): the RDE update."""

    def __init__(self, key_channels=64, value_channels=512):
        super().__init__()
        self.key_encoder = SAM(key_channels)
        self.value_encoder = SAM(value_channels)
        self.compress_key = nn.Conv3d(key_channels, key_channels, (2, 3, 3), padding=(0, 1, 1))
        self.compress_value = nn.Conv3d(value_channels, value_channels, (2, 3, 3), padding=(0, 1, 1))

    def zero_init_non_local(self):
        """Make both non-local blocks start as the identity (W = 0, as Wang et al. 2018 initialise them).

        The released trainer keeps PyTorch's default init; the non-local term is cubic in its input,
        so with keys of std ~2 (random encoders) the recurrent RDE then explodes within three updates.
        """
        for sam in (self.key_encoder, self.value_encoder):
            nn.init.zeros_(sam.non_local.W.weight)
            nn.init.zeros_(sam.non_local.W.bias)
        return self

    def update_key(self, rde_key, new_key):
        """(B, 64, h, w) previous RDE key and new memory-frame key -> new RDE key (B, 64, h, w)."""
        x = torch.stack([rde_key, new_key], dim=2)
        return self.compress_key(self.key_encoder(x)).squeeze(2)

    def update_value(self, rde_value, new_value):
        """(B, K, 512, h, w) previous RDE values and new values -> (B, K, 512, h, w).

        Every object is an independent batch element of the value SAM.
        """
        b, k = rde_value.shape[:2]
        x = torch.stack([rde_value.flatten(0, 1), new_value.flatten(0, 1)], dim=2)
        out = self.compress_value(self.value_encoder(x)).squeeze(2)
        return out.view(b, k, *out.shape[1:])

    def forward(self, rde_key, rde_value, new_key, new_value):
        return self.update_key(rde_key, new_key), self.update_value(rde_value, new_value)
