"""RDE-VOS: SAM, network loading, the RDE memory policy (DAVIS and YouTubeVOS protocols).

Parity with ../shared/reference/golden/rde_seed0.npz (RDE.md section 9): the published evaluation
path run on synthetic weights whose SAM gains are read from the file's ``extra_gains``.
"""
import hashlib

import numpy as np
import pytest
import torch

from conftest import REFERENCE, load_golden, load_shapes, synthetic_state_dict
from dataset.synthetic import SyntheticVideo
from evaluation import golden as golden_runs
from inference import InferenceCore, segment_video
from inference.policy import PERMANENT, make_policy
from inference.rde import LAYOUTS, RDE_PRESETS, RDEMemory
from inference.transforms import PadToMultiple, image_to_tensor
from model import RDE, STCN, CheckpointError, KeyFeatures, load_network
from model.memory_readout import read_memory
from model.rde.sam import MemoryCompression, NonLocalBlock

PROBS_MAX, PROBS_MEAN = golden_runs.TOLERANCES["rde"]
INTERMEDIATE_MAX, MARGIN = 1e-3, golden_runs.MARGIN


@pytest.fixture(scope="module")
def golden():
    return load_golden("rde_seed0")


@pytest.fixture(scope="module")
def net(golden):
    return golden_runs.golden_network("rde_seed0", golden, REFERENCE)


class _KeyCache:
    """Memoises encode_key by input bytes so the main and aux runs encode each frame once (speed only)."""

    def __init__(self, encode_key):
        self.encode_key, self.cache = encode_key, {}

    def __call__(self, image):
        digest = hashlib.sha1(image.detach().cpu().numpy().tobytes()).hexdigest()
        if digest not in self.cache:
            self.cache[digest] = self.encode_key(image)
        return self.cache[digest]


@pytest.fixture(scope="module")
def cached_net(net):
    net.encode_key = _KeyCache(RDE.encode_key.__get__(net))
    yield net
    del net.encode_key


@pytest.fixture(scope="module")
def main_run(golden, cached_net):
    """segment_video with the golden settings, recording SAM calls, read-outs and memory sizes."""
    net = cached_net
    record = {"sam": [], "readouts": [], "mem_frames": [], "policies": []}
    update, read = net.update_memory, RDEMemory.read

    def recording_update(*args):
        out = update(*args)
        record["sam"].append((args, out))
        return out

    def recording_read(self, query):
        if self not in record["policies"]:
            record["policies"].append(self)
        record["mem_frames"].append(self.stats()["memory_frames"])
        out = read(self, query)
        record["readouts"].append(out.clone())
        return out

    net.update_memory = recording_update
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(RDEMemory, "read", recording_read)
        outputs = list(segment_video(net, list(golden["frames"]), golden["first_mask"], memory="rde",
                                     layout=str(golden["mode"]), top_k=int(golden["top_k"]),
                                     mem_every=int(golden["mem_every"])))
    del net.update_memory
    record["probs"] = np.stack(outputs, axis=1)
    return record


def _assert_probs(probs, masks, golden_probs, golden_masks):
    diff = np.abs(probs - golden_probs)
    assert diff.max() <= PROBS_MAX and diff.mean() <= PROBS_MEAN, (diff.max(), diff.mean())
    top2 = np.sort(golden_probs, axis=0)[-2:]
    decided = (top2[1] - top2[0]) > MARGIN
    assert np.array_equal(masks[decided], golden_masks[decided])


def _close(actual, expected, name):
    actual = actual.detach().cpu().numpy() if torch.is_tensor(actual) else actual
    assert actual.shape == expected.shape, (name, actual.shape, expected.shape)
    assert np.abs(actual - expected).max() <= INTERMEDIATE_MAX, (name, np.abs(actual - expected).max())


# --- SAM -----------------------------------------------------------------------------------------

def test_sam_module_matches_golden_intermediates(golden, net):
    sam = net.mem_compress
    with torch.inference_mode():
        k = torch.from_numpy(golden["sam1_in_k"])
        _close(sam.key_encoder.non_local(k), golden["sam1_k_nonlocal"], "sam1_k_nonlocal")
        _close(sam.key_encoder(k), golden["sam1_k_sam"], "sam1_k_sam")
        _close(sam.update_key(k[:, :, 0], k[:, :, 1]).unsqueeze(2), golden["sam1_k"], "sam1_k")
        v = torch.from_numpy(golden["sam1_in_v_o1"])[:, 0]          # object 1: 1, 512, 2, h, w
        _close(sam.value_encoder.non_local(v), golden["sam1_v_nonlocal_o1"], "sam1_v_nonlocal_o1")
        _close(sam.value_encoder(v), golden["sam1_v_sam_o1"], "sam1_v_sam_o1")
        out = sam.update_value(v[:, None, :, 0], v[:, None, :, 1])
        _close(out.unsqueeze(3), golden["sam1_v"][:, :1], "sam1_v object 1")


def test_non_local_divides_by_pooled_positions_without_softmax():
    torch.manual_seed(0)
    block = NonLocalBlock(8).eval()
    x = torch.randn(1, 8, 2, 5, 7)                       # pooled: 2 x 2 x 3 = 12 positions (floor)
    with torch.no_grad():
        theta = block.theta(x).flatten(2)
        phi, g = block.phi(x).flatten(2), block.g(x).flatten(2)
        assert phi.shape[-1] == 12
        y = (theta.transpose(1, 2) @ phi / 12) @ g.transpose(1, 2)
        expected = block.W(y.transpose(1, 2).reshape(1, 4, 2, 5, 7)) + x
        torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="2x2"):
        block(torch.randn(1, 8, 2, 1, 7))


# --- loading ---------------------------------------------------------------------------------------

def test_rde_checkpoint_is_recognised_and_loads_strictly(net):
    shapes = load_shapes("rde")
    assert isinstance(net, RDE) and not net.training
    state = net.state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == shapes
    assert sum(k.startswith("mem_compress.") for k in state) == 30 and len(state) == 435
    # the DDP prefix of a training run is stripped
    prefixed = {"module." + k: v for k, v in synthetic_state_dict("rde", 1).items()}
    assert isinstance(load_network(prefixed), RDE)


def test_stcn_checkpoint_is_rejected_for_rde_with_clear_message(stcn_seed0_state_dict):
    assert type(load_network(stcn_seed0_state_dict)) is STCN
    with pytest.raises(CheckpointError, match=r"SAM weights \(mem_compress\.\*\) are missing"):
        load_network(stcn_seed0_state_dict, architecture="rde")


def test_layouts_with_rde_need_the_sam(stcn_seed0_state_dict):
    stcn = load_network(stcn_seed0_state_dict)
    with pytest.raises(ValueError, match="needs an RDE network"):
        make_policy("rde", stcn, layout="two-frames-compress")
    assert make_policy("rde", stcn, layout="two-frames").layout == "two-frames"   # no SAM involved
    with pytest.raises(ValueError, match="unknown RDE layout"):
        make_policy("rde", stcn, layout="three-frames")


# --- golden parity --------------------------------------------------------------------------------

def test_main_run_matches_golden(golden, main_run):
    _assert_probs(main_run["probs"], main_run["probs"].argmax(0), golden["probs"], golden["masks"])
    # frame 0 has no read; [GT, GT] until the first update, then [RDE, L, GT, GT]
    assert [0] + main_run["mem_frames"] == golden["mem_frames_per_query"].tolist()
    policy, = main_run["policies"]
    assert [g.updates for g in policy.groups] == [golden["sam_frames"].tolist()]


def test_sam_updates_of_main_run_match_golden(golden, main_run):
    sam = main_run["sam"]
    assert len(sam) == len(golden["sam_frames"])
    (rde_k, rde_v, new_k, new_v), (k1, v1) = sam[0]
    _close(rde_k, golden["k16"], "k16")                             # the RDE starts as GT itself
    _close(rde_v[0].unsqueeze(2), golden["v16"], "v16")
    _close(torch.stack([rde_k, new_k], 2), golden["sam1_in_k"], "sam1_in_k")
    _close(torch.stack([rde_v, new_v], 3)[:, :1], golden["sam1_in_v_o1"], "sam1_in_v_o1")
    _close(k1.unsqueeze(2), golden["sam1_k"], "sam1_k")
    _close(v1.unsqueeze(3), golden["sam1_v"], "sam1_v")
    k_last, v_last = sam[-1][1]
    _close(k_last.unsqueeze(2), golden["samlast_k"], "samlast_k")
    _close(v_last.unsqueeze(3), golden["samlast_v"], "samlast_v")
    # slot order of every update: [previous RDE, new frame]
    for (_, previous), (args, _) in zip(sam, sam[1:]):
        assert args[0] is previous[0] and args[1] is previous[1]


def test_readouts_match_golden(golden, main_run):
    for name, frame in zip(("readout_q1", "readout_q2"), golden["readout_frames"].tolist()):
        _close(main_run["readouts"][frame - 1], golden[name], name)


def test_rde_only_aux_run_matches_golden(golden, cached_net):
    outputs = list(segment_video(cached_net, list(golden["frames"]), golden["first_mask"], memory="rde",
                                 layout=str(golden["aux_mode"]), top_k=int(golden["aux_top_k"]),
                                 mem_every=int(golden["mem_every"])))
    probs = np.stack(outputs, axis=1)[:, golden["aux_frames"]]
    _assert_probs(probs, probs.argmax(0), golden["probs_aux"], golden["masks_aux"])


# --- memory size, write schedule, YouTubeVOS protocol (cheap stand-in network) ----------------------

class _StubNetwork(torch.nn.Module):
    """The network API at negligible cost (16x16 average pooling, fixed random 1x1 convs) with a small
    SAM (8 key / 16 value channels): for tests of the memory policy and protocols, not the network."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.key_proj = torch.nn.Conv2d(3, 8, 1)
        self.value_proj = torch.nn.Conv2d(5, 16, 1)
        self.pred = torch.nn.Conv2d(16, 1, 1)
        self.mem_compress = MemoryCompression(8, 16)
        with torch.no_grad():   # keep the recurrent (cubic) non-local term bounded, as the golden gains do
            self.mem_compress.key_encoder.non_local.W.weight.mul_(0.1)
            self.mem_compress.value_encoder.non_local.W.weight.mul_(0.1)

    update_memory = RDE.update_memory

    def encode_key(self, image):
        f = torch.nn.functional.avg_pool2d(image, 16)
        return KeyFeatures(self.key_proj(f), f, f, None, None)

    def encode_value(self, image, f16, object_probs):
        b, k, h, w = object_probs.shape[0], object_probs.shape[1], *f16.shape[-2:]
        p = torch.nn.functional.avg_pool2d(object_probs, 16).unsqueeze(2)
        x = torch.cat([f16.unsqueeze(1).expand(b, k, 3, h, w), p, p.sum(1, keepdim=True) - p], dim=2)
        return self.value_proj(x.flatten(0, 1)).view(b, k, 16, h, w)

    def decode(self, readout, query):
        b, k = readout.shape[:2]
        logits = torch.nn.functional.interpolate(self.pred(readout.flatten(0, 1)), scale_factor=16,
                                                 mode="bilinear", align_corners=False)
        return logits.view(b, k, *logits.shape[-2:])


@pytest.fixture(scope="module")
def stub():
    return _StubNetwork().eval()


def _run_core(network, video, given, **options):
    """InferenceCore over a whole video; returns (core, outputs, per-read records)."""
    core = InferenceCore(network, memory="rde", **options)
    policy, read, records, outputs = core.policy, core.policy.read, {}, {}

    def recording_read(query):
        out = read(query)
        records[t] = {"readout": out.clone(), "stats": policy.stats(),
                      "last": [(g.last_frame, g.slots.get("last", (None,))[0]) for g in policy.groups]}
        return out

    policy.read = recording_read
    with torch.inference_mode():
        for t, rgb in enumerate(video.frames()):
            outputs[t] = core.step(t, rgb, mask=given.get(t), is_last=t == len(video) - 1)
    return core, outputs, records


def test_memory_is_constant_in_video_length(stub):
    video = SyntheticVideo(seed=2, height=64, width=96, num_objects=2, length=30)
    given = {0: video.labels(0)}
    core, outputs, records = _run_core(stub, video, given, mem_every=1)
    read_sizes = [records[t]["stats"]["memory_features"] for t in range(1, 30)]
    assert read_sizes == [2 * 24] + [4 * 24] * 28            # [GT, GT], then [RDE, L, GT, GT]
    assert core.stats()["stored_features"] == 3 * 24 and core.stats()["rde_updates"] == 28
    assert all(torch.isfinite(r["readout"]).all() for r in records.values())
    stcn = InferenceCore(stub, memory="every5", mem_every=1)
    with torch.inference_mode():
        for t, rgb in enumerate(video.frames()):
            stcn.step(t, rgb, mask=given.get(t), is_last=t == 29)
    assert stcn.stats()["memory_features"] == 29 * 24         # the every-k memory keeps growing


def test_write_schedule_theta_and_include_last(stub):
    video = SyntheticVideo(seed=1, height=64, width=96, num_objects=2, length=8)
    given = {0: video.labels(0)}

    def updates(**options):
        return _run_core(stub, video, given, **options)[0].policy.groups[0].updates

    assert updates(mem_every=3) == [3, 6]                     # t mod theta == 0, never the last frame
    assert updates(mem_every=5) == [5]
    assert updates(mem_every=2, include_last=True) == list(range(1, 7))   # every frame a full update
    assert make_policy("rde", stub, include_last=True).write_kind(5, 4) == PERMANENT


def test_layouts_read_the_published_blocks(stub):
    """Blocks read before / after the first update (RDE.md section 4 table), checked by read size."""
    video = SyntheticVideo(seed=1, height=64, width=96, num_objects=1, length=6)
    expected = {"two-frames-compress": (2, 4), "compress": (1, 1), "gt-compress": (2, 2),
                "last-compress": (1, 2), "two-frames": (1, 3), "last": (1, 1), "gt": (1, 1)}
    assert set(expected) == set(LAYOUTS)
    for layout, (before, after) in expected.items():
        _, _, records = _run_core(stub, video, {0: video.labels(0)}, layout=layout, mem_every=2)
        assert [records[t]["stats"]["memory_frames"] for t in (1, 2, 3, 5)] == [before, before, after, after]


def test_presets_are_the_papers_settings():
    assert RDE_PRESETS["davis"] == {"layout": "two-frames-compress", "top_k": 40, "mem_every": 3}
    assert RDE_PRESETS["youtube"]["mem_every"] == 4


def test_youtube_protocol_late_object_starts_its_own_memory(stub):
    """Object 2 given at frame 0, object 5 at frame 4 (theta 3): object 5 reads only frame 4 until its
    own first update; object 2 receives frame 4 as a normal SAM update (it becomes its L)."""
    video = SyntheticVideo(seed=3, height=64, width=96, num_objects=2, length=9, object_ids=(2, 5),
                           first_frames=(0, 4))
    given = {0: np.where(video.labels(0) == 2, 2, 0).astype(np.uint8),
             4: np.where(video.labels(4) == 5, 5, 0).astype(np.uint8)}
    top_k = RDE_PRESETS["youtube"]["top_k"]
    core, outputs, records = _run_core(stub, video, given, top_k=top_k, mem_every=3)
    assert core.object_ids == [2, 5]
    old, late = core.policy.groups
    assert (old.objects, old.gt_frame, old.updates) == ([0], 0, [3, 4, 7])
    assert (late.objects, late.gt_frame, late.updates) == ([1], 4, [7])
    assert outputs[3].shape[0] == 2 and outputs[4].shape[0] == 3           # object 5 joins at frame 4
    assert [[f for f, _ in records[t]["last"]] for t in (4, 5, 8)] == [[3], [4, None], [7, 7]]

    with torch.inference_mode():   # independent recomputation of object 5's read-out at frame 5: [GT4, GT4]
        pad = PadToMultiple(64, 96)
        image4, image5 = (pad.image(image_to_tensor(video.frame(t)[0], "cpu")) for t in (4, 5))
        q4, q5 = stub.encode_key(image4), stub.encode_key(image5)
        v4 = stub.encode_value(image4, q4.f16, outputs[4][None, 1:])
        expected, _ = read_memory(torch.cat([q4.key.flatten(2)] * 2, dim=2),
                                  torch.cat([v4[:, 1:].flatten(3)] * 2, dim=3), q5.key.flatten(2), top_k)
    torch.testing.assert_close(records[5]["readout"][1], expected[0, 0].view(16, 4, 6))
    torch.testing.assert_close(records[5]["last"][0][1], q4.key)          # object 2's L is frame 4


def test_segment_video_youtube_masks(net):
    """The real network through segment_video with a late object (YouTubeVOS protocol)."""
    video = SyntheticVideo(seed=4, height=64, width=96, num_objects=2, length=5, first_frames=(0, 2))
    given = {0: np.where(video.labels(0) == 1, 1, 0).astype(np.uint8),
             2: np.where(video.labels(2) == 2, 2, 0).astype(np.uint8)}
    outputs = list(segment_video(net, video.frames(), given, memory="rde", **RDE_PRESETS["youtube"]))
    assert len(outputs) == 5 and all(o.shape == (3, 64, 96) for o in outputs)
    assert all(np.allclose(o.sum(0), 1, atol=1e-5) for o in outputs)
    assert np.all(outputs[0][2] == 0) and np.all(outputs[1][2] == 0)      # object 2 not yet given
    assert np.array_equal(outputs[2].argmax(0) == 2, given[2] == 2)        # its given mask is kept
