"""The key encoder is torchvision's ResNet-50 to layer3 without importing torchvision: same parameter
names (layer1 is ``res2``), same initialisation, same outputs, and its ImageNet file loads unchanged."""
import pytest
import torch
import torchvision

from model.encoders import IMAGENET_URLS, KeyEncoder, PretrainedWeightsUnavailable, ValueEncoder
from training.logger import tile_grid


def torchvision_names(encoder):
    return {name.replace("res2.", "layer1.", 1) for name in encoder.state_dict()}


def truncated(resnet, x):
    x = resnet.maxpool(resnet.relu(resnet.bn1(resnet.conv1(x))))
    f4 = resnet.layer1(x)
    f8 = resnet.layer2(f4)
    return resnet.layer3(f8), f8, f4


def test_names_shapes_and_outputs_are_torchvision_resnet50s():
    torch.manual_seed(0)
    reference = torchvision.models.resnet50(weights=None).eval()
    ours = KeyEncoder().eval()
    theirs = {k: v for k, v in reference.state_dict().items() if not k.startswith(("layer4.", "fc."))}
    assert torchvision_names(ours) == set(theirs)
    ours.load_state_dict({name: theirs[name.replace("res2.", "layer1.", 1)] for name in ours.state_dict()})
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        for mine, expected in zip(ours(x), truncated(reference, x)):
            assert mine.shape == expected.shape
            torch.testing.assert_close(mine, expected, rtol=0, atol=0)


def test_initialisation_follows_torchvision():
    ours, reference = KeyEncoder(), torchvision.models.resnet50(weights=None)
    for name, tensor in ours.state_dict().items():
        expected = reference.state_dict()[name.replace("res2.", "layer1.", 1)]
        if name.endswith("conv2.weight") and tensor.shape[0] >= 128:   # He-normal, fan-out: std sqrt(2/fan_out)
            std = (2.0 / (tensor.shape[0] * tensor[0, 0].numel())) ** 0.5
            assert tensor.std().item() == pytest.approx(std, rel=0.05), name
            assert expected.std().item() == pytest.approx(std, rel=0.05), name
        elif ".bn" in name or name.startswith("bn1") or "downsample.1" in name:
            assert torch.equal(tensor, expected), name   # BatchNorm: weight 1, bias 0, running stats 0/1


def test_imagenet_files_load_from_the_torch_hub_cache(tmp_path, monkeypatch):
    """Files named as torchvision names them in $TORCH_HOME/hub/checkpoints are what pretrained=True loads."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.manual_seed(1)
    resnet50, resnet18 = torchvision.models.resnet50(weights=None), torchvision.models.resnet18(weights=None)
    torch.save(resnet50.state_dict(), cache / IMAGENET_URLS["resnet50"].rsplit("/", 1)[1])
    torch.save(resnet18.state_dict(), cache / IMAGENET_URLS["resnet18"].rsplit("/", 1)[1])
    key = KeyEncoder(pretrained=True)
    assert torch.equal(key.res2[2].conv3.weight, resnet50.layer1[2].conv3.weight)
    assert torch.equal(key.layer3[5].bn3.running_var, resnet50.layer3[5].bn3.running_var)
    value = ValueEncoder(pretrained=True)
    assert torch.equal(value.conv1.weight[:, :3], resnet18.conv1.weight)
    assert torch.equal(value.layer3[1].conv2.weight, resnet18.layer3[1].conv2.weight)
    assert not value.layer3[1].conv2.bias.any()   # resnet18 has no conv biases: ours start at zero


def test_missing_weights_offline_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setitem(IMAGENET_URLS, "resnet50", "http://127.0.0.1:9/resnet50-0676ba61.pth")   # nothing listens
    with pytest.raises(PretrainedWeightsUnavailable, match="--no_pretrained"):
        KeyEncoder(pretrained=True)


def test_training_image_grid_is_torchvisions_make_grid():
    tiles = [torch.rand(3, 5, 7) for _ in range(7)]
    expected = torchvision.utils.make_grid(torch.stack(tiles), nrow=3, padding=2)
    assert torch.equal(tile_grid(tiles, columns=3), expected)
