"""Contracts every registered memory policy keeps, on both protocols, through the same API."""
import numpy as np
import pytest
import torch

from conftest import synthetic_state_dict
from inference import MEMORY_POLICIES, InferenceCore, segment_video
from model import load_network

H, W, T = 48, 64, 8
RDE_GAINS = {"mem_compress.key_encoder.non_local.W.": 0.1, "mem_compress.value_encoder.non_local.W.": 0.1,
             "mem_compress.compress_key.": 0.7, "mem_compress.compress_value.": 0.7}
# small-frame settings: top-k must not exceed one frame's h*w = 12 positions; SWEM keeps the frame size
POLICIES = {
    "every5": ("stcn", {"top_k": 8}),
    "lfu": ("stcn", {"top_k": 8, "capacity": 2}),
    "rde": ("rde", {"top_k": 8, "mem_every": 3}),
    "swem": ("swem", {"work_size": None, "n_bases": 64}),   # n_bases >= top_l (64)
}
BOUNDED = {"lfu", "rde", "swem"}
pytestmark = pytest.mark.usefixtures("one_thread")


def test_every_registered_policy_is_covered():
    assert set(MEMORY_POLICIES) == set(POLICIES)


@pytest.fixture(scope="module")
def networks():
    return {"stcn": load_network(synthetic_state_dict("stcn", 0)),
            "rde": load_network(synthetic_state_dict("rde", 0, extra_gains=RDE_GAINS)),
            "swem": load_network(synthetic_state_dict("swem", 0))}


def video(n=T):
    rng = np.random.default_rng(1)
    base = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    return [np.roll(base, 3 * t, axis=1) for t in range(n)]


def square(y, x, label, size=16):
    m = np.zeros((H, W), dtype=np.uint8)
    m[y:y + size, x:x + size] = label
    return m


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_outputs_are_distributions_and_late_objects_start_at_zero(policy, networks):
    arch, options = POLICIES[policy]
    masks = {0: square(4, 4, 2), 4: square(28, 40, 9)}
    out = list(segment_video(networks[arch], video(), masks, memory=policy, **options))
    assert len(out) == T
    for t, probs in enumerate(out):
        assert probs.shape == (3, H, W) and probs.dtype == np.float32
        assert np.isfinite(probs).all()
        assert np.allclose(probs.sum(0), 1, atol=1e-4), (policy, t)
        if t < 4:
            assert not probs[2].any(), "object 9 is not given before frame 4"
    assert (np.array([0, 2, 9])[out[0].argmax(0)] == masks[0]).all()
    assert (out[4].argmax(0)[masks[4] == 9] == 2).all()


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_memory_size_after_many_writes(policy, networks):
    arch, options = POLICIES[policy]
    every_frame = {} if policy == "swem" else {"mem_every": 1}   # SWEM memorises every frame anyway
    core = InferenceCore(networks[arch], memory=policy, **{**options, **every_frame})
    sizes = []
    with torch.inference_mode():
        for t, frame in enumerate(video(10)):
            core.step(t, frame, mask=square(4, 4, 1) if t == 0 else None, is_last=t == 9)
            sizes.append(core.stats()["memory_features"])
    if policy in BOUNDED:
        assert sizes[-1] == sizes[6], f"{policy} memory must stop growing: {sizes}"
    else:
        assert sizes[-1] > sizes[6] > sizes[0]


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_nothing_returned_carries_autograd_state(policy, networks):
    arch, options = POLICIES[policy]
    core = InferenceCore(networks[arch], memory=policy, **options)
    with torch.inference_mode():
        probs = core.step(0, video(1)[0], mask=square(4, 4, 1))
        probs = core.step(1, video(2)[1])
    assert not probs.requires_grad
    assert all(p.grad is None for p in networks[arch].parameters())
