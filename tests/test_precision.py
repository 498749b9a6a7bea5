"""precision= of segment_video / InferenceCore: bfloat16 on CPU is opt-in, really runs the network in
bfloat16, yields float32 outputs close to float32's, and bad combinations fail before any work (the
eval scripts' --precision: tests/test_eval_scripts.py)."""
import numpy as np
import pytest
import torch

from dataset.synthetic import SyntheticVideo
from inference import InferenceCore, segment_video

pytestmark = pytest.mark.usefixtures("one_thread")
H, W, T = 48, 64, 6


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
