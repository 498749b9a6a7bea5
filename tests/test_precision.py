"""precision= of segment_video / InferenceCore and --precision of the eval scripts: bfloat16 on CPU is
opt-in, really runs the network in bfloat16, yields float32 outputs close to float32's, and bad
combinations fail before any work."""
import json

import numpy as np
import pytest
import torch

import eval_davis
import eval_youtube
from conftest import synthetic_state_dict
from dataset.synthetic import SyntheticVideo, write_synthetic_davis
from inference import InferenceCore, segment_video
from model import build_network, load_network

pytestmark = pytest.mark.usefixtures("one_thread")
H, W, T = 48, 64, 6


@pytest.fixture(scope="module")
def net():
    return load_network(synthetic_state_dict("stcn", seed=0))


@pytest.fixture(scope="module")
def video():
    clip = SyntheticVideo(seed=3, height=H, width=W, num_objects=2, length=T)
    return list(clip.frames()), clip.labels(0)


def run(net, video, **options):
    frames, first = video
    return np.stack(list(segment_video(net, frames, first, **options)))


@pytest.mark.parametrize("memory", ["every5", "lfu"])
def test_bfloat16_outputs_are_float32_distributions_close_to_float32(net, video, memory):
    reference = run(net, video, memory=memory)
    low = run(net, video, memory=memory, precision="bfloat16")
    assert low.dtype == np.float32 and low.shape == reference.shape
    np.testing.assert_allclose(low.sum(axis=1), 1.0, atol=1e-4)
    difference = np.abs(low - reference)
    assert 0 < difference.mean() < 0.02 and difference.max() < 0.25   # rounding, not a different answer
    np.testing.assert_array_equal(low[0], reference[0])                # the given frame is the given mask
    assert (low.argmax(axis=1) == reference.argmax(axis=1)).mean() > 0.8


def test_float32_is_the_default_and_bfloat16_reaches_the_convolutions(net, video):
    seen = []
    hooks = [m.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
             for m in (net.key_encoder.conv1, net.value_encoder.conv1, net.decoder.pred)]
    try:
        run(net, video)
        default = set(seen)
        seen.clear()
        run(net, video, precision="bfloat16")
        low = set(seen)
    finally:
        for hook in hooks:
            hook.remove()
    assert default == {torch.float32} and low == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in net.parameters())   # autocast leaves the weights alone


@pytest.mark.parametrize("options, message", [
    ({"precision": "float16"}, r"precision='float16': unknown precision; choose one of float32, bfloat16"),
    ({"precision": "bfloat16", "amp": True}, r"precision='bfloat16' and amp=True exclude each other"),
    ({"precision": "bfloat16", "device": "cuda"}, r"precision='bfloat16' runs on CPU only, but the device is cuda"),
    ({"amp": True}, r"amp=True needs a CUDA device, but the device is cpu; on CPU use precision='bfloat16'"),
])
def test_bad_precision_settings_fail_before_any_frame_is_read(net, options, message):
    def frames():
        raise AssertionError("a frame was read")
        yield
    with pytest.raises(ValueError, match=message):
        next(segment_video(net, frames(), np.ones((H, W), np.uint8), **options))
    with pytest.raises(ValueError, match=message):
        InferenceCore(net, **options)


# ---------------------------------------------------------------- eval scripts
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "stcn_random.pth"
    torch.save(build_network().state_dict(), path)
    return path


@pytest.fixture(scope="module")
def davis_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("davis")
    write_synthetic_davis(root, seed=5, num_train=0, num_val=1, num_test_dev=0, length=3, height=H, width=W,
                          max_objects=2)
    return root


def exit_message(module, argv):
    try:
        module.main([str(a) for a in argv])
    except SystemExit as stop:
        return str(stop.code)
    return None


def test_eval_davis_records_the_precision_it_ran_with(davis_set, checkpoint, tmp_path):
    output = tmp_path / "out"
    assert exit_message(eval_davis, ["--model", checkpoint, "--davis_path", davis_set, "--output", output,
                                     "--device", "cpu", "--precision", "bfloat16"]) is None
    config = json.loads((output / "eval_config.json").read_text())
    assert config["precision"] == "bfloat16" and config["amp"] is False
    assert (output / "global_results-val.csv").is_file()


@pytest.mark.parametrize("module, data_flag", [(eval_davis, "--davis_path"), (eval_youtube, "--yv_path")])
@pytest.mark.parametrize("flags, message", [
    (["--precision", "bfloat16", "--amp", "--device", "cpu"],
     "error: --precision bfloat16 and --amp exclude each other: bfloat16 is the CPU option, --amp is CUDA "
     "float16; choose one"),
    (["--precision", "bfloat16", "--device", "cuda"],
     "error: --precision bfloat16 runs on CPU only, but the device is cuda; pass --device cpu, or on CUDA use "
     "--amp (float16)"),
])
def test_nonsensical_precision_flags_give_one_error_line_before_any_work(module, data_flag, flags, message,
                                                                         davis_set, tmp_path):
    # the flags are checked before the data is read and the network loaded: neither needs to exist here
    if module is eval_youtube:
        from dataset.synthetic import write_synthetic_youtube
        write_synthetic_youtube(tmp_path / "yv", seed=0, num_train=0, num_valid=1, length=3, height=H, width=W,
                                max_objects=1)
    data = davis_set if module is eval_davis else tmp_path / "yv"
    output = tmp_path / "out"
    assert exit_message(module, ["--model", tmp_path / "missing.pth", data_flag, data, "--output", output,
                                 *flags]) == message
    assert not output.exists()


def test_precision_flag_accepts_only_known_values():
    with pytest.raises(SystemExit):
        eval_davis.build_parser().parse_args(["--model", "m", "--output", "o", "--precision", "float16"])
    args = eval_davis.build_parser().parse_args(["--model", "m", "--output", "o"])
    assert args.precision == "float32" and args.amp is False
