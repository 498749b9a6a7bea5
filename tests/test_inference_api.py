"""segment_video / InferenceCore contracts: protocols, ids, streaming, skipping, errors."""
import gc
import weakref

import numpy as np
import pytest
import torch

from inference import InferenceCore, object_ids, segment_video

H, W, T = 48, 64, 9


def make_video(n=T, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    return [np.roll(base, 2 * t, axis=1) for t in range(n)]


def square(y, x, size=16, label=1):
    m = np.zeros((H, W), dtype=np.uint8)
    m[y:y + size, x:x + size] = label
    return m


def test_davis_outputs_are_distributions_with_background_first(net):
    first = square(8, 8, label=1) + square(24, 36, label=2)
    out = list(segment_video(net, make_video(), first))
    assert len(out) == T
    for probs in out:
        assert probs.shape == (3, H, W) and probs.dtype == np.float32
        assert np.allclose(probs.sum(0), 1, atol=1e-5)
    assert (out[0].argmax(0) == first).all()


def test_youtube_protocol_late_object_and_non_consecutive_ids(net):
    masks = {0: square(8, 8, label=3), 3: square(24, 36, label=7)}
    assert object_ids(masks) == [3, 7]
    out = list(segment_video(net, make_video(), masks))
    for t in range(3):
        assert not out[t][2].any(), "object 7 has probability 0 before it is given"
    assert np.allclose(out[3].sum(0), 1, atol=1e-5)
    labels = np.array([0, 3, 7])[out[3].argmax(0)]
    assert (labels[masks[3] == 7] == 7).all()
    # inside the new object's area every earlier object's probability was replaced
    assert out[3][1][masks[3] == 7].max() < 1e-3


def test_late_object_reads_only_memory_written_since_it_was_given(net):
    core = InferenceCore(net, mem_every=2)
    video = make_video()
    with torch.inference_mode():
        core.step(0, video[0], mask=square(8, 8, label=3))
        for t in (1, 2):
            core.step(t, video[t])
        core.step(3, video[3], mask=square(24, 36, label=7))
    bank = core.policy.bank
    hw = (H // 16) * (W // 16)
    # frames 0 and 2 were written before object 7 was given at frame 3
    assert core.object_ids == [3, 7]
    assert bank.object_start == [0, 2 * hw]
    assert torch.unique(bank.frames).tolist() == [0, 2, 3]
    assert not bank.values[1, :, :2 * hw].any()


def test_frames_before_the_first_given_frame_are_background(net):
    out = list(segment_video(net, make_video(5), {2: square(8, 8, label=4)}))
    assert all((p[0] == 1).all() and not p[1].any() for p in out[:2])
    assert (out[2].argmax(0) == (square(8, 8) > 0)).all()


class Frames:
    """A lazy video that records how far it has been read and lets frames be garbage collected."""

    def __init__(self, video):
        self.video, self.read, self.refs = video, 0, []

    def __iter__(self):
        for frame in self.video:
            self.read += 1
            copy = frame.copy()
            self.refs.append(weakref.ref(copy))
            yield copy


def test_streaming_reads_one_frame_ahead_and_keeps_no_frames(net):
    frames = Frames(make_video(12))
    for t, probs in enumerate(segment_video(net, frames, square(8, 8))):
        assert frames.read <= t + 2
        gc.collect()
        assert all(ref() is None for ref in frames.refs[:max(0, t - 1)])
    assert frames.read == 12


def test_memory_grows_by_memory_entries_only(net):
    core = InferenceCore(net, mem_every=5)
    video = make_video(12)
    sizes = []
    with torch.inference_mode():
        for t, frame in enumerate(video):
            core.step(t, frame, mask=square(8, 8) if t == 0 else None, is_last=t == 11)
            sizes.append(core.stats()["memory_frames"])
    # frame 0, then frames 5 and 10; never the last frame; no temporary entry by default
    assert sizes == [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3]
    hw = (H // 16) * (W // 16)
    assert core.stats()["memory_features"] == 3 * hw


def test_include_last_keeps_one_temporary_entry(net):
    core = InferenceCore(net, mem_every=5, include_last=True)
    with torch.inference_mode():
        for t, frame in enumerate(make_video(8)):
            core.step(t, frame, mask=square(8, 8) if t == 0 else None, is_last=t == 7)
            assert core.stats()["memory_frames"] == (1 if t == 0 else 2 if t < 5 else 2 if t == 5 else 3)


def test_skipped_frames_do_not_change_required_outputs(net):
    video = make_video(10)
    full = list(segment_video(net, video, square(8, 8)))
    sparse = list(segment_video(net, video, square(8, 8), required_frames={0, 3, 9}))
    for t in range(10):
        if t in (0, 3, 5, 9):  # required, or a memory frame (5)
            assert sparse[t] is not None and np.allclose(sparse[t], full[t], atol=1e-6)
        else:
            assert sparse[t] is None


def test_outputs_carry_no_autograd_state_and_grad_mode_is_restored(net):
    gen = segment_video(net, make_video(3), square(8, 8))
    next(gen)
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    assert not net.key_comp.weight.requires_grad or all(p.grad is None for p in net.parameters())


def test_bad_inputs_fail_with_clear_errors(net):
    with pytest.raises(ValueError, match="frame 0 has shape"):
        list(segment_video(net, make_video(3), np.zeros((H + 1, W), dtype=np.uint8)))
    with pytest.raises(ValueError, match=r"object\(s\) \[1\] given again at frame 2"):
        list(segment_video(net, make_video(4), {0: square(8, 8), 2: square(30, 30)}))
    with pytest.raises(ValueError, match=r"frame\(s\) \[7\]"):
        list(segment_video(net, make_video(4), {0: square(8, 8), 7: square(20, 20, label=2)}))
    with pytest.raises(ValueError, match="unknown memory policy"):
        list(segment_video(net, make_video(2), square(8, 8), memory="fifo"))
    with pytest.raises(ValueError, match="amp=True needs a CUDA device"):
        list(segment_video(net, make_video(2), square(8, 8), amp=True))
    with pytest.raises(ValueError, match="integer label map"):
        list(segment_video(net, make_video(2), np.zeros((H, W), dtype=np.float32)))
    with pytest.raises(ValueError, match="uint8 RGB"):
        list(segment_video(net, [np.zeros((H, W), dtype=np.uint8)], square(8, 8)))


def test_every5_max_frames_drops_the_oldest_non_given_frame(net):
    core = InferenceCore(net, mem_every=1, max_frames=3)
    with torch.inference_mode():
        for t, frame in enumerate(make_video(7)):
            core.step(t, frame, mask=square(8, 8) if t == 0 else None, is_last=t == 6)
            assert core.stats()["memory_frames"] <= 3
    assert torch.unique(core.policy.bank.frames).tolist() == [0, 4, 5]


@pytest.mark.parametrize("channels_last", [True, False])
def test_channels_last_runs_every_stage_in_that_format_with_equal_outputs(net, channels_last):
    seen = {}

    def record(name):
        def hook(module, inputs):
            x = inputs[0]
            seen[name] = x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
        return hook

    stages = {"key encoder": net.key_encoder.conv1, "value encoder": net.value_encoder.conv1,
              "value fuser": net.value_encoder.fuser.block1.conv1, "decoder": net.decoder.compress.conv2,
              "decoder x4": net.decoder.up_8_4.out_conv.conv2}
    handles = [m.register_forward_pre_hook(record(n)) for n, m in stages.items()]
    first = square(8, 8, label=1) + square(24, 36, label=2)
    try:
        out = np.stack(list(segment_video(net, make_video(6), first, channels_last=channels_last)))
    finally:
        for handle in handles:
            handle.remove()
    assert seen == {name: channels_last for name in stages}
    reference = np.stack(list(segment_video(net, make_video(6), first, channels_last=not channels_last)))
    # convolution kernels differ by memory format and CPU (AVX2 vs AVX-512): ~1e-5 apart in float32
    np.testing.assert_allclose(out, reference, atol=1e-4)
