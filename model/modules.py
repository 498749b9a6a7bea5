"""Building blocks shared by STCN, RDE and SWEM (names match the released checkpoints)."""
import torch
import torch.nn as nn
import torch.nn.functional as F


def like_format(x, reference):
    """``x`` in the memory format of ``reference``. Channels-last inputs keep every stage
    channels-last, which oneDNN convolves faster on CPU; without this, concatenating a read-out
    (NCHW) with key features would drop the rest of the network back to NCHW."""
    if reference.dim() == 4 and not reference.is_contiguous() \
            and reference.is_contiguous(memory_format=torch.channels_last):
        return x.contiguous(memory_format=torch.channels_last)
    return x


class ResBlock(nn.Module):
    """Pre-activation residual block without normalisation: r = conv2(relu(conv1(relu(x)))).

    When the channel count changes, the skip path is a 3x3 conv named ``downsample`` (the
    published name, although it does not change the resolution).
    """

    def __init__(self, in_channels, out_channels=None):
        super().__init__()
        out_channels = out_channels or in_channels
        self.downsample = (nn.Conv2d(in_channels, out_channels, 3, padding=1)
                           if in_channels != out_channels else None)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1)

    def forward(self, x, shared=None):
        """x (N, C, H, W). With ``shared`` (B, C - Cx, H, W), x holds K = N / B objects per frame
        (N, Cx, H, W) and the block's input is cat([x, shared repeated per object], dim=1); the
        shared part is then convolved once per frame instead of once per object."""
        if shared is None:
            r = self.conv1(F.relu(x))
            skip = x if self.downsample is None else self.downsample(x)
        else:
            if self.downsample is None:
                raise ValueError("a shared input needs a block whose channel count changes")
            r = _conv_of_concatenation(self.conv1, F.relu(x), F.relu(shared))
            skip = _conv_of_concatenation(self.downsample, x, shared)
        # In place wherever the tensor is a fresh conv output: on CPU every new full-resolution
        # tensor costs page faults, which rival the convolutions' own time at 480p.
        return self.conv2(F.relu_(r)).add_(skip)


def _conv_of_concatenation(conv, per_object, shared):
    """conv(cat([per_object, shared repeated K times], dim=1)) by linearity: the weights' shared
    input channels are applied once per frame. per_object (B*K, Cx, H, W), shared (B, Cs, H, W)."""
    split = per_object.shape[1]
    geometry = (conv.stride, conv.padding, conv.dilation)   # groups == 1: input channels split freely
    out = F.conv2d(per_object, conv.weight[:, :split], conv.bias, *geometry)
    once = F.conv2d(shared, conv.weight[:, split:], None, *geometry)
    out.view(shared.shape[0], -1, *out.shape[1:]).add_(once.unsqueeze(1))
    return out


class ChannelGate(nn.Module):
    """CBAM channel attention: sigmoid(MLP(avg-pool) + MLP(max-pool)) with one shared MLP."""

    def __init__(self, channels, reduction=16):
        super().__init__()
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(channels, channels // reduction),
                                 nn.ReLU(), nn.Linear(channels // reduction, channels))

    def forward(self, x):
        avg = self.mlp(x.mean(dim=(2, 3)))
        mx = self.mlp(x.amax(dim=(2, 3)))
        return x * torch.sigmoid(avg + mx)[:, :, None, None]


class _SpatialConv(nn.Module):
    """Holds the 7x7 conv under the published name ``spatial.conv``."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x):
        return self.conv(x)


class SpatialGate(nn.Module):
    """CBAM spatial attention: sigmoid(conv7x7([channel-max, channel-mean]))."""

    def __init__(self):
        super().__init__()
        self.spatial = _SpatialConv()

    def forward(self, x):
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    def __init__(self, channels, reduction=16):
        super().__init__()
        self.ChannelGate = ChannelGate(channels, reduction)
        self.SpatialGate = SpatialGate()

    def forward(self, x):
        return self.SpatialGate(self.ChannelGate(x))


class FeatureFusionBlock(nn.Module):
    """Fuses value-encoder features with the key encoder's f16: block2(x + cbam(x)), x = block1(cat)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.block1 = ResBlock(in_channels, out_channels)
        self.attention = CBAM(out_channels)
        self.block2 = ResBlock(out_channels, out_channels)

    def forward(self, value_features, key_f16):
        x = self.block1(torch.cat([value_features, key_f16], dim=1))
        return self.block2(x + self.attention(x))


class UpsampleBlock(nn.Module):
    """Decoder stage: 3x3 conv of the skip feature + x2 bilinear of the coarse path, then a ResBlock."""

    def __init__(self, skip_channels, up_channels, out_channels, scale_factor=2):
        super().__init__()
        self.skip_conv = nn.Conv2d(skip_channels, up_channels, 3, padding=1)
        self.out_conv = ResBlock(up_channels, out_channels)
        self.scale_factor = scale_factor

    def forward(self, skip, up):
        """skip (B, C, H, W); up (B*K, C, H/2, W/2): K objects of one frame share its skip feature,
        which is convolved once instead of once per object."""
        skip = self.skip_conv(skip)
        up = F.interpolate(up, scale_factor=self.scale_factor, mode="bilinear", align_corners=False)
        per_frame = up.shape[0] // skip.shape[0]
        up.view(skip.shape[0], per_frame, *up.shape[1:]).add_(skip.unsqueeze(1))
        return self.out_conv(up)


class Decoder(nn.Module):
    """f16-level input -> per-object logit map at the input resolution (x4 of the f4 grid)."""

    def __init__(self, in_channels=1024):
        super().__init__()
        self.compress = ResBlock(in_channels, 512)
        self.up_16_8 = UpsampleBlock(512, 512, 256)
        self.up_8_4 = UpsampleBlock(256, 256, 256)
        self.pred = nn.Conv2d(256, 1, 3, padding=1)

    def forward(self, x, f8, f4, out_size=None, shared=None):
        """x (B*K, C, h, w): K objects per frame of the B frames of f8/f4. ``shared`` (B, C', h, w):
        input channels common to a frame's objects (STCN: f16_thin), concatenated after x's.
        ``out_size`` (H, W): resize the logits straight to it (SWEM); default x4 of the f4 grid."""
        x = self.compress(like_format(x, f8), None if shared is None else like_format(shared, f8))
        x = self.up_16_8(f8, x)
        x = self.up_8_4(f4, x)
        x = self.pred(F.relu_(x))
        if out_size is not None:
            return F.interpolate(x, size=tuple(out_size), mode="bilinear", align_corners=False)
        return F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)


class KeyProjection(nn.Module):
    """3x3 projection of f16 into the key space (published name ``key_proj.key_proj``)."""

    def __init__(self, in_channels, key_channels):
        super().__init__()
        self.key_proj = nn.Conv2d(in_channels, key_channels, 3, padding=1)

    def forward(self, x):
        return self.key_proj(x)
