"""Every accepted checkpoint form loads to the same network; every rejected one fails clearly."""
import pickle

import pytest
import torch

from conftest import synthetic_state_dict
from model import CheckpointError, build_network, load_network, widen_value_input
from model.checkpoint import VALUE_INPUT_WEIGHT


@pytest.fixture(scope="module")
def released():
    return synthetic_state_dict("stcn", seed=0)


def assert_same_weights(network, state_dict):
    own = network.state_dict()
    assert set(own) == set(state_dict)
    for k, v in state_dict.items():
        assert torch.equal(own[k], v), k


def test_released_state_dict_loads_strictly_in_eval_mode(released, tmp_path):
    path = tmp_path / "stcn.pth"
    torch.save(released, path)
    net = load_network(path)
    assert not net.training
    assert_same_weights(net, released)


def test_ddp_prefix_is_stripped(released, tmp_path):
    path = tmp_path / "ddp.pth"
    torch.save({f"module.{k}": v for k, v in released.items()}, path)
    assert_same_weights(load_network(path), released)


def test_training_state_holding_the_network_loads(released, tmp_path):
    path = tmp_path / "checkpoint.pth"
    torch.save({"it": 10, "network": released, "optimizer": {"state": {}}}, path)
    assert_same_weights(load_network(path), released)


def test_stage0_file_is_zero_padded_and_gives_the_single_object_outputs(tmp_path):
    stage0 = synthetic_state_dict("stcn", seed=3, overrides={VALUE_INPUT_WEIGHT: [64, 4, 7, 7]})
    path = tmp_path / "stage0.pth"
    torch.save(stage0, path)
    net = load_network(path)
    w = net.state_dict()[VALUE_INPUT_WEIGHT]
    assert w.shape == (64, 5, 7, 7)
    assert torch.equal(w[:, :4], stage0[VALUE_INPUT_WEIGHT]) and not w[:, 4].any()
    single = build_network(single_object=True)
    single.load_state_dict(stage0)
    single.eval()
    image, f16 = torch.randn(1, 3, 32, 32), torch.randn(1, 1024, 2, 2)
    probs = torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net.encode_value(image, f16, probs), single.encode_value(image, f16, probs),
                              atol=1e-5)


def test_orthogonal_widening_for_training_keeps_old_channels():
    stage0 = {VALUE_INPUT_WEIGHT: torch.randn(64, 4, 7, 7)}
    widened = widen_value_input(stage0, mode="orthogonal")[VALUE_INPUT_WEIGHT]
    assert torch.equal(widened[:, :4], stage0[VALUE_INPUT_WEIGHT])
    extra = widened[:, 4].reshape(64, -1)
    assert extra.abs().sum() > 0
    assert torch.allclose(extra.T @ extra, torch.eye(49), atol=1e-4)  # 64 x 49: orthonormal columns


def test_missing_and_unexpected_keys_are_named(released, tmp_path):
    broken = dict(released)
    del broken["decoder.pred.bias"]
    broken["decoder.extra.weight"] = torch.zeros(1)
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError) as err:
        load_network(path)
    msg = str(err.value)
    assert str(path) in msg and "decoder.pred.bias" in msg and "decoder.extra.weight" in msg


def test_wrong_shape_is_named(released):
    broken = {**released, "key_comp.bias": torch.zeros(7)}
    with pytest.raises(CheckpointError, match=r"key_comp\.bias \(7,\) vs \(512,\)"):
        load_network(broken)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="notes.pth"):
        load_network(path)
    with pytest.raises(CheckpointError, match="not found"):
        load_network(tmp_path / "absent.pth")


class _Payload:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_pickled_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        pickle.dump({"network": _Payload()}, f)
    with pytest.raises(CheckpointError, match="evil.pth"):
        load_network(path)
    assert "pickled code ran" not in capsys.readouterr().out


def test_dict_without_weights_is_refused(tmp_path):
    path = tmp_path / "meta.pth"
    torch.save({"it": 3, "lr": 1e-5}, path)
    with pytest.raises(CheckpointError, match="holds no network weights"):
        load_network(path)
