"""Key encoder (ResNet-50 to layer3) and value encoder (ResNet-18 with biased convs, to layer3)."""
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from model.modules import FeatureFusionBlock, like_format


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
    """torchvision's ImageNet weights for ``arch`` ('resnet50' or 'resnet18'), or a clear error."""
    weights = {"resnet50": torchvision.models.ResNet50_Weights.IMAGENET1K_V1,
               "resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1}[arch]
    try:
        return weights.get_state_dict(progress=False)
    except Exception as exc:  # network errors come in many types (URLError, OSError, ...)
        raise PretrainedWeightsUnavailable(
            f"could not obtain torchvision's ImageNet {arch} weights ({exc}); on an offline machine "
            "pass --no_pretrained (train.py) / pretrained=False, or place the file in the torch hub "
            "cache (TORCH_HOME)") from exc


class KeyEncoder(nn.Module):
    """ResNet-50 stem + layer1..3; returns f16 (1024 ch), f8 (512), f4 (256)."""

    def __init__(self, pretrained=False):
        super().__init__()
        resnet = torchvision.models.resnet50(weights=None)
        if pretrained:
            resnet.load_state_dict(_imagenet_state_dict("resnet50"))
        self.conv1, self.bn1, self.relu, self.maxpool = resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool
        self.res2, self.layer2, self.layer3 = resnet.layer1, resnet.layer2, resnet.layer3

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
