"""Key encoder (ResNet-50 to layer3) and value encoder (ResNet-18 with biased convs, to layer3).

Both follow torchvision's ResNet ("v1.5": the stride of a bottleneck sits on its 3x3 convolution) with
its parameter names, so that its ImageNet files and the released checkpoints load unchanged; torchvision
itself is not imported (importing it costs seconds in every process).
"""
from typing import NamedTuple

import torch
import torch.hub
import torch.nn as nn
import torch.nn.functional as F

from model.modules import FeatureFusionBlock, like_format

# torchvision's IMAGENET1K_V1 files (the published code's pretrained=True); the hex part of each name is
# the start of the file's SHA-256, checked on download.
IMAGENET_URLS = {"resnet50": "https://download.pytorch.org/models/resnet50-0676ba61.pth",
                 "resnet18": "https://download.pytorch.org/models/resnet18-f37072fd.pth"}
RESNET50_BLOCKS = (3, 4, 6)   # bottlenecks in layer1..layer3 (He et al. 2016, Table 1)


class KeyFeatures(NamedTuple):
    """Key-encoder outputs of a frame: everything a query or a later memory write needs."""
    key: torch.Tensor       # B, Ck, h, w   (stride 16)
    f16_thin: torch.Tensor  # B, 512, h, w  (decoder input beside the read-out)
    f16: torch.Tensor       # B, 1024, h, w (value-encoder fusion input)
    f8: torch.Tensor        # B, 512, 2h, 2w
    f4: torch.Tensor        # B, 256, 4h, 4w


class PretrainedWeightsUnavailable(RuntimeError):
    pass


def _imagenet_state_dict(arch):
    """torchvision's ImageNet weights for ``arch`` ('resnet50' or 'resnet18') through the torch hub cache
    (``$TORCH_HOME/hub/checkpoints``), downloaded when missing, or a clear error."""
    try:
        return torch.hub.load_state_dict_from_url(IMAGENET_URLS[arch], progress=False, check_hash=True,
                                                  weights_only=True)
    except Exception as exc:  # network errors come in many types (URLError, OSError, ...)
        raise PretrainedWeightsUnavailable(
            f"could not obtain torchvision's ImageNet {arch} weights ({exc}); on an offline machine "
            "pass --no_pretrained (train.py) / pretrained=False, or place the file in the torch hub "
            "cache (TORCH_HOME)") from exc


class Bottleneck(nn.Module):
    """ResNet-50 bottleneck: 1x1 (to ``width``), 3x3 (carrying the stride), 1x1 (to 4 x ``width``)."""

    def __init__(self, in_channels, width, stride=1):
        super().__init__()
        out_channels = 4 * width
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


def _bottleneck_layer(in_channels, width, blocks, stride):
    layers = [Bottleneck(in_channels, width, stride)]
    layers += [Bottleneck(4 * width, width) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class KeyEncoder(nn.Module):
    """ResNet-50 stem + layer1..3; returns f16 (1024 ch), f8 (512), f4 (256)."""

    def __init__(self, pretrained=False):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.res2 = _bottleneck_layer(64, 64, RESNET50_BLOCKS[0], stride=1)
        self.layer2 = _bottleneck_layer(256, 128, RESNET50_BLOCKS[1], stride=2)
        self.layer3 = _bottleneck_layer(512, 256, RESNET50_BLOCKS[2], stride=2)
        self._initialise()
        if pretrained:
            self._load_imagenet()

    def _initialise(self):
        """torchvision's ResNet initialisation: He-normal convolutions (fan-out), BatchNorm 1 and 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _load_imagenet(self):
        """torchvision's ResNet-50 names; its layer1 is ``res2`` here (the released checkpoints' name)."""
        source = _imagenet_state_dict("resnet50")
        own = {name.replace("res2.", "layer1.", 1): name for name in self.state_dict()}
        self.load_state_dict({own[name]: tensor for name, tensor in source.items() if name in own})

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        f4 = self.res2(x)
        f8 = self.layer2(f4)
        f16 = self.layer3(f8)
        return f16, f8, f4


class BasicBlock(nn.Module):
    """ResNet-18 basic block whose convolutions carry a bias (as in the released value encoder)."""

    def __init__(self, in_channels, channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, channels, 1, stride=stride),
                                            nn.BatchNorm2d(channels))

    def forward(self, x):
        out = F.relu_(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu_(out.add_(x if self.downsample is None else self.downsample(x)))


def _layer(in_channels, channels, stride):
    return nn.Sequential(BasicBlock(in_channels, channels, stride), BasicBlock(channels, channels))


class ValueEncoder(nn.Module):
    """Image + mask(s) -> 512-ch value at stride 16, fused with the key encoder's f16.

    Input channels: RGB (3), this object's probability, and (multi-object) the sum of the other
    objects' probabilities; the single-object (stage-0) variant has no "others" channel.
    """

    def __init__(self, single_object=False, pretrained=False):
        super().__init__()
        self.single_object = single_object
        in_channels = 4 if single_object else 5
        self.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(64)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = _layer(64, 64, 1)
        self.layer2 = _layer(64, 128, 2)
        self.layer3 = _layer(128, 256, 2)
        self.fuser = FeatureFusionBlock(1024 + 256, 512)
        if pretrained:
            self._load_imagenet()

    def _load_imagenet(self):
        """ResNet-18 ImageNet weights for the RGB part; extra mask channels orthogonal; biases zero."""
        source = _imagenet_state_dict("resnet18")
        own = self.state_dict()
        for name, tensor in source.items():
            if name not in own:
                continue  # layer4 / fc
            if name == "conv1.weight":
                extra = torch.empty(64, own[name].shape[1] - 3, 7, 7)
                nn.init.orthogonal_(extra)
                tensor = torch.cat([tensor, extra], dim=1)
            own[name] = tensor
        for name in own:
            if name.endswith(".bias") and not name.startswith("fuser") and "bn" not in name \
                    and not name.endswith("downsample.1.bias"):
                own[name] = torch.zeros_like(own[name])
        self.load_state_dict(own)

    def forward(self, image, key_f16, mask, others=None):
        """image (B,3,H,W), key_f16 (B,1024,h,w), mask/others (B,1,H,W) -> (B,512,h,w)."""
        parts = [image, mask] if self.single_object else [image, mask, others]
        x = like_format(torch.cat(parts, dim=1), image)
        x = self.maxpool(F.relu_(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fuser(x, key_f16)
