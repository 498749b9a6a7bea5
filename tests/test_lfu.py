"""LFU adaptive memory (memory="lfu") and the every5 max_frames cap: bounded memory, eviction order,
counters from the read-out's own top-k indices, late objects, and equality with every5 when nothing
has to be evicted."""
import numpy as np
import pytest
import torch

from dataset.synthetic import SyntheticVideo
from inference import InferenceCore, segment_video
from inference.lfu import LFUMemory
from model import KeyFeatures
from model.memory_readout import l2_affinity

H, W = 64, 96
HW = (H // 16) * (W // 16)   # memory features per frame

pytestmark = pytest.mark.usefixtures("one_thread")


def davis_clip(length=16, seed=3):
    video = SyntheticVideo(seed=seed, height=H, width=W, num_objects=2, length=length)
    return list(video.frames()), {0: video.labels(0)}


def youtube_clip(length=16, late=6, seed=4):
    """Objects 3 (frame 0) and 7 (given at ``late``): each mask holds only the object first given."""
    video = SyntheticVideo(seed=seed, height=H, width=W, num_objects=2, length=length,
                           object_ids=(3, 7), first_frames=(0, late))
    masks = {0: np.where(video.labels(0) == 3, 3, 0).astype(np.uint8),
             late: np.where(video.labels(late) == 7, 7, 0).astype(np.uint8)}
    return list(video.frames()), masks


def run_core(net, frames, masks, after_step=None, **options):
    core = InferenceCore(net, **options)
    outputs = []
    with torch.inference_mode():
        for t, frame in enumerate(frames):
            outputs.append(core.step(t, frame, mask=masks.get(t), is_last=t == len(frames) - 1))
            if after_step is not None:
                after_step(t, core)
    return core, outputs


# ---------------------------------------------------------------- hand-built memories
def features(n, key_channels=4, objects=1, value_channels=3, seed=0):
    """(query-like KeyFeatures, value) of a frame with n feature positions (1 x n grid)."""
    g = torch.Generator().manual_seed(seed)
    key = torch.randn(1, key_channels, 1, n, generator=g)
    value = torch.randn(objects, value_channels, 1, n, generator=g)
    return KeyFeatures(key, None, None, None, None), value


def hand_built(capacity=3, protect_given=False, hits=(3, 0, 2, 1, 1, 2)):
    """Frames 0, 5, 10 with 2 features each; frame 0 is the given frame; counters set by hand."""
    policy = LFUMemory(None, capacity=capacity, protect_given=protect_given)
    policy.add_objects(1)
    for i, t in enumerate((0, 5, 10)):
        policy.write(t, *features(2, seed=i))
    policy.hits = torch.tensor(hits)
    return policy


def test_eviction_order_lowest_index_over_age_first_ties_oldest_first():
    policy = hand_built()
    # at t = 15 ages are 15, 15, 10, 10, 5, 5 -> scores .2, 0, .2, .1, .2, .4 (three exact ties at .2)
    assert torch.allclose(policy.scores(15), torch.tensor([.2, 0, .2, .1, .2, .4], dtype=torch.float64))
    assert policy.eviction_order(15).tolist() == [1, 3, 0, 2, 4, 5]
    kept_keys = policy.bank.keys[:, [0, 2, 4, 5]]
    query, value = features(2, seed=9)
    policy.write(15, query, value)                        # 6 + 2 > capacity 6: two features go
    assert policy.bank.frames.tolist() == [0, 5, 10, 10, 15, 15]
    assert torch.equal(policy.bank.keys[:, :4], kept_keys)
    assert torch.equal(policy.bank.keys[:, 4:], query.key[0].flatten(1))
    assert policy.hits.tolist() == [3, 2, 1, 2, 0, 0]    # new features start at index 0


def test_protect_given_evicts_given_frame_features_last():
    policy = hand_built(protect_given=True)
    assert policy.bank.given_frames == {0}
    assert policy.eviction_order(15).tolist() == [3, 2, 4, 5, 1, 0]
    policy.write(15, *features(2, seed=9))
    assert policy.bank.frames.tolist() == [0, 0, 10, 10, 15, 15]


def test_capacity_is_a_hard_bound_even_for_protected_features():
    policy = LFUMemory(None, capacity=1, protect_given=True)
    policy.add_objects(1)
    policy.write(0, *features(2))
    policy.add_objects(1)                                 # a second given frame
    policy.write(3, *features(2, objects=2, seed=1))
    assert policy.bank.size == 2 and policy.bank.frames.tolist() == [3, 3]


def test_counters_count_the_top_k_indices_the_read_out_used():
    policy = LFUMemory(None, capacity=10, top_k=3, include_last=True)
    policy.add_objects(1)
    policy.write(0, *features(5, seed=0))
    policy.add_objects(1)                                 # object 2 reads positions 5.. only
    policy.write(4, *features(5, objects=2, seed=1))
    policy.write(6, *features(5, objects=2, seed=2), permanent=False)   # temporary entry
    used = []
    read = policy.bank.read

    def spy(query_key):
        out = read(query_key)
        used.extend(out[1])
        return out

    policy.bank.read = spy
    query, _ = features(7, seed=3)
    policy.read(query)
    assert [(start, objects) for start, objects, _ in used] == [(0, [0]), (5, [1])]

    # the same top-k, computed independently over each group's slice (+ the temporary entry)
    q = query.key[0].flatten(1)
    keys = torch.cat([policy.bank.keys, policy.bank.temporary[0]], dim=1)
    expected = torch.zeros(10, dtype=torch.long)
    for (start, _, indices) in used:
        top = torch.topk(l2_affinity(keys[None, :, start:], q[None])[0], 3, dim=0).indices
        assert torch.equal(indices.sort(0).values, top.sort(0).values)
        positions = (top + start).flatten()
        expected += torch.bincount(positions[positions < 10], minlength=10)
    assert expected.sum() > 0
    assert torch.equal(policy.hits, expected)
    policy.read(query)
    assert torch.equal(policy.hits, 2 * expected)         # counts accumulate over frames


def test_bad_options_fail_clearly(net):
    for capacity in (0, 1.5, True):
        with pytest.raises(ValueError, match="capacity"):
            LFUMemory(None, capacity=capacity)
    with pytest.raises(ValueError, match="protect_given must be True or False"):
        LFUMemory(None, protect_given="true")
    frames, masks = davis_clip(3)
    with pytest.raises(ValueError, match="capacity"):
        list(segment_video(net, frames, masks[0], memory="lfu", capacity=0))


# ---------------------------------------------------------------- on videos
@pytest.mark.parametrize("capacity,protect_given", [(1, False), (2, False), (2, True)])
def test_capacity_never_exceeded_at_any_frame(net, capacity, protect_given):
    frames, masks = davis_clip()
    sizes = []

    def check(t, core):
        bank = core.policy.bank
        assert bank.size <= capacity * HW
        assert core.stats()["memory_features"] == bank.size and core.policy.hits.shape == (bank.size,)
        sizes.append(bank.size)

    core, _ = run_core(net, frames, masks, check, memory="lfu", capacity=capacity, mem_every=2,
                       protect_given=protect_given)
    assert max(sizes) == capacity * HW                    # it fills up, and evicts from then on
    assert core.stats()["capacity_features"] == capacity * HW
    if protect_given:
        assert (core.policy.bank.frames == 0).sum() == HW   # the given frame 0 stays whole


def test_youtube_protocol_late_object(net):
    late = 6
    frames, masks = youtube_clip(late=late)
    seen_late_memory = []

    def check(t, core):
        bank = core.policy.bank
        assert bank.size <= 2 * HW
        if t >= late:
            start = bank.object_start[1]
            assert start < bank.size                      # the late object always has memory
            assert (bank.frames[start:] >= late).all()    # ... written since it was given
            seen_late_memory.append(t)

    core, outputs = run_core(net, frames, masks, check, memory="lfu", capacity=2, mem_every=2)
    assert core.object_ids == [3, 7] and seen_late_memory == list(range(late, len(frames)))
    assert all(o.shape == (2, H, W) for o in outputs[:late])     # object 7 not known yet
    assert all(o.shape == (3, H, W) for o in outputs[late:])
    assert (outputs[late].argmax(0)[torch.as_tensor(masks[late]) == 7] == 2).all()
    out = list(segment_video(net, frames, masks, memory="lfu", capacity=2, mem_every=2))
    assert all(not o[2].any() for o in out[:late])
    assert np.allclose(out[-1].sum(0), 1, atol=1e-5)


@pytest.mark.parametrize("clip", [davis_clip, youtube_clip])
def test_lfu_with_room_for_every_write_equals_every5(net, clip):
    frames, masks = clip()
    banks = {}

    def record(name):
        def after_step(t, core):
            bank = core.policy.bank
            banks.setdefault(name, []).append((bank.keys.clone(), bank.values.clone(), bank.frames.clone(),
                                              list(bank.object_start)))
        return after_step

    core, every5 = run_core(net, frames, masks, record("every5"), memory="every5")
    written = core.policy.bank.num_frames
    assert written >= 3
    _, lfu = run_core(net, frames, masks, record("lfu"), memory="lfu", capacity=written)
    for a, b in zip(banks["every5"], banks["lfu"]):
        assert all(torch.equal(x, y) for x, y in zip(a[:3], b[:3])) and a[3] == b[3]
    assert all(torch.equal(a, b) for a, b in zip(every5, lfu))
    # one frame less of room, and the memories part
    _, smaller = run_core(net, frames, masks, record("smaller"), memory="lfu", capacity=written - 1)
    assert not torch.equal(banks["smaller"][-1][2], banks["every5"][-1][2])


def test_every5_max_frames_drops_the_oldest_non_given_frame_and_keeps_late_objects_memory(net):
    late = 5
    frames, masks = youtube_clip(length=12, late=late)
    kept = []

    def check(t, core):
        bank = core.policy.bank
        assert bank.num_frames <= 3
        if t >= late:
            assert (bank.frames[bank.object_start[1]:] >= late).all()
        kept.append(sorted(set(bank.frames.tolist())))

    core, _ = run_core(net, frames, masks, check, memory="every5", mem_every=2, max_frames=3)
    # writes: 0 (given), 2, 4, 5 (given), 7, 9; the oldest non-given frame goes first
    assert kept[4] == [0, 2, 4]
    assert kept[5] == [0, 4, 5]
    assert kept[7] == [0, 5, 7]
    assert kept[9] == [0, 5, 9]
    assert core.policy.bank.given_frames == {0, 5}
