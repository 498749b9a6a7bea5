"""SWEM: network names and loading, the weighted EM contract, base matching, and parity (float64)
with the published code on synthetic weights (golden/swem_seed0.npz, SWEM.md §8)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import REFERENCE, load_golden, load_shapes, synthetic_state_dict
from dataset.synthetic import SyntheticVideo
from evaluation import golden as golden_runs
from inference import InferenceCore, segment_video
from inference.swem import youtube_work_size
from model import CheckpointError, load_network
from model.swem import SWEM
from model.swem.em import Bases, adaptive_weights, init_bases, l2_normalize, mask_weights, match_bases, weighted_em

FEATURE_MAX, BASES_MAX, ZETA_ABS, ZETA_REL = 1e-5, 1e-4, 1e-4, 1e-5   # SWEM.md §8
PROB_MAX, PROB_MEAN = golden_runs.TOLERANCES["swem"]
MARGIN = golden_runs.MARGIN


@pytest.fixture(scope="module")
def golden():
    return load_golden("swem_seed0")


@pytest.fixture(scope="module")
def net64():
    return load_network(golden_runs.swem_state_dict(0, REFERENCE)).double()  # ImageNet buffers, SWEM.md §8


def work_image(frame, size):
    x = torch.from_numpy(frame).permute(2, 0, 1)[None].double() / 255
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False)


def assert_close(ours, reference, tol, what):
    ours = ours.detach().double().numpy()
    assert ours.shape == reference.shape, what
    assert np.abs(ours - reference).max() <= tol, (what, np.abs(ours - reference).max())


def assert_bases_close(bases, g, prefix):
    assert_close(bases.kappa, g[f"{prefix}_kappa"], BASES_MAX, f"{prefix} kappa")
    assert_close(bases.nu, g[f"{prefix}_nu"], BASES_MAX, f"{prefix} nu")
    zeta, ref = bases.zeta.double().numpy(), g[f"{prefix}_zita"]
    assert np.all(np.abs(zeta - ref) <= ZETA_ABS + ZETA_REL * np.abs(ref)), f"{prefix} zeta"


# ----------------------------------------------------------------------------- network and loading

def test_state_dict_names_and_shapes_are_the_published_ones(net64):
    assert isinstance(net64, SWEM) and not net64.training     # load_network recognised the keys
    ours = {k: list(v.shape) for k, v in net64.state_dict().items()}
    assert ours == load_shapes("swem")
    assert sum(p.numel() for p in net64.parameters()) == 58_563_524   # SWEM.md §2: 58.56 M


def test_load_network_accepts_a_stage0_file_and_names_a_wrong_architecture():
    stage0 = synthetic_state_dict("swem", 1, overrides={"value_encoder.conv1.weight": [64, 4, 7, 7]})
    net = load_network({"module." + k: v for k, v in stage0.items()})
    widened = net.state_dict()["value_encoder.conv1.weight"]
    assert isinstance(net, SWEM) and widened.shape == (64, 5, 7, 7)
    assert torch.equal(widened[:, :4], stage0["value_encoder.conv1.weight"])
    with pytest.raises(CheckpointError, match="look like a swem checkpoint"):
        load_network(stage0, architecture="stcn")


def test_normalisation_buffers_are_used(net64):
    image = torch.rand(1, 3, 32, 48, dtype=torch.float64)
    with torch.inference_mode():
        before = net64.encode_key(image).key
        saved = net64.key_encoder.mean.clone()
        try:
            net64.key_encoder.mean.fill_(0.0)
            after = net64.encode_key(image).key
        finally:
            net64.key_encoder.mean.copy_(saved)
    assert not torch.allclose(before, after)


def test_decoder_resizes_straight_to_the_output_size(net64):
    image = torch.rand(1, 3, 64, 96, dtype=torch.float64)
    with torch.inference_mode():
        query = net64.encode_key(image)
        context = torch.randn(1, 2, 512, 4, 6, dtype=torch.float64)
        assert net64.decode(context, query).shape == (1, 2, 64, 96)
        assert net64.decode(context, query, out_size=(50, 90)).shape == (1, 2, 50, 90)


# ----------------------------------------------------------------------------- weighted EM contract

def random_frame(seed, k=2, n=40, ck=8, cv=6, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    keys = torch.randn(1, ck, n, generator=g, dtype=dtype) * 3
    values = torch.randn(1, k, cv, n, generator=g, dtype=dtype)
    hard = (torch.rand(1, k, n, 1, generator=g, dtype=dtype) > 0.5).to(dtype)
    soft = (0.8 * hard + 0.1 + 0.1 * torch.rand(1, k, n, 1, generator=g, dtype=dtype))
    return keys, values, mask_weights(hard, soft, (n, 1))


def test_mask_weights_follow_the_hard_and_soft_masks():
    hard = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])
    soft = torch.tensor([[[[0.9, 0.3], [0.6, 0.1]]]])
    m = mask_weights(hard, soft, (2, 2))
    assert m.shape == (1, 1, 2, 4)
    assert torch.allclose(m[0, 0, 1], torch.tensor([0.9, 0.0, 0.6, 0.0]))          # h q
    assert torch.allclose(m[0, 0, 0], torch.tensor([0.0, 0.7, 0.0, 0.9]))          # (1-h)(1-q)


def test_em_mass_adds_the_pixel_weights_and_bases_are_weighted_means():
    keys, values, m = random_frame(0)
    prior = init_bases(1, 2, 8, 6, 5, like=keys, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(prior.kappa.norm(dim=3), torch.ones(1, 2, 2, 5, dtype=keys.dtype))
    new = weighted_em(keys, values, m, prior, iters=3, weighting="fixed")
    # every pixel spreads exactly its weight over the set's bases
    assert torch.allclose((new.zeta - prior.zeta).sum(dim=(3, 4)), m.sum(dim=3))
    # kappa is the mass-weighted mean of prior bases and keys: kappa * zeta - prior part = sum z x
    total_key = (new.kappa * new.zeta - prior.kappa * prior.zeta).sum(dim=4)       # B, K, 2, Ck
    assert torch.allclose(total_key, torch.einsum("bcn,bksn->bksc", keys, m), atol=1e-10)
    # with every value equal to c and nu = 0 before, nu = c * (new mass / total mass)
    c = torch.arange(6, dtype=keys.dtype).view(1, 1, 6, 1)
    new = weighted_em(keys, c.expand_as(values), m, prior, iters=3, weighting="fixed")
    share = (new.zeta - prior.zeta) / new.zeta
    assert torch.allclose(new.nu, c.view(1, 1, 1, 6, 1) * share)


def test_em_restarts_from_the_prior_and_accumulates_frames():
    keys, values, m = random_frame(2)
    prior = init_bases(1, 2, 8, 6, 5, like=keys, generator=torch.Generator().manual_seed(3))
    once = weighted_em(keys, values, m, prior)
    twice = weighted_em(keys, values, m, once)
    assert torch.all(twice.zeta > once.zeta)
    # the second frame's mass is again exactly its adaptive-weight total at most: zeta grows, no decay
    assert float((twice.zeta - once.zeta).sum()) <= float(m.sum()) + 1e-9


def test_adaptive_weights_shrink_for_confident_pixels_and_keep_hard_ones():
    # fg bases around e0, bg bases around e1; pixels 0-1 are fg keys near e0 (easy), pixel 2 is a
    # fg pixel whose key looks like background (hard)
    ck = 4
    e = torch.eye(ck, dtype=torch.float64)
    kappa = torch.stack([e[1][:, None].repeat(1, 3), e[0][:, None].repeat(1, 3)])[None, None]
    keys = torch.stack([e[0], e[0] + 0.1 * e[2], e[1]], dim=1)[None]
    m = torch.zeros(1, 1, 2, 3, 1, dtype=torch.float64)
    m[0, 0, 1] = 1.0                                     # all three pixels are foreground
    w = adaptive_weights(l2_normalize(keys, 1), kappa, m, tau=0.05)
    fg = w[0, 0, 1, :, 0]
    # easy pixel: cos 1 with the fg bases, 0 with the bg ones -> w_fg = P_bg = 1 / (1 + e^20)
    assert math.isclose(float(fg[0]), 1 / (1 + math.exp(20)), rel_tol=1e-4)   # eps 1e-6 of the norms
    assert fg[1] < 1e-6
    assert fg[2] > 0.999                                 # hard pixel keeps its weight
    assert torch.all(w[0, 0, 0] == 0)                    # no background weight anywhere


def test_adaptive_weights_are_exact_in_float32_where_one_minus_p_cancels():
    ck, n = 16, 64
    g = torch.Generator().manual_seed(4)
    keys = torch.randn(1, ck, n, generator=g, dtype=torch.float64)
    kappa = torch.randn(1, 1, 2, ck, 8, generator=g, dtype=torch.float64)
    m = torch.rand(1, 1, 2, n, 1, generator=g, dtype=torch.float64)
    ref = adaptive_weights(l2_normalize(keys, 1), kappa, m, tau=0.05)
    ours = adaptive_weights(l2_normalize(keys.float(), 1), kappa.float(), m.float(), tau=0.05).double()
    tiny = ref < 1e-4          # P of the own set above 0.9999: m (1 - P) would lose most digits
    assert tiny.any()
    rel = ((ours - ref).abs() / ref.clamp_min(1e-300))[tiny]
    assert rel.max() < 1e-3


def test_initial_release_variant_keeps_fixed_weights_on_half_the_bases():
    keys, _, m = random_frame(5, k=1)
    kappa = torch.randn(1, 1, 2, 8, 6, dtype=keys.dtype)
    w = adaptive_weights(l2_normalize(keys, 1), kappa, m.unsqueeze(-1), weighting="adaptive_initial")
    assert w.shape == (1, 1, 2, 40, 6)
    assert torch.equal(w[..., 3:], m.unsqueeze(-1).expand(-1, -1, -1, -1, 3))
    assert torch.all(w[..., :3] <= m.unsqueeze(-1) + 1e-15)


def test_em_rejects_unknown_weighting():
    keys, values, m = random_frame(6)
    prior = init_bases(1, 2, 8, 6, 5, like=keys)
    with pytest.raises(ValueError, match="weighting"):
        weighted_em(keys, values, m, prior, weighting="soft")


def test_only_nu_carries_gradient():
    keys, values, m = random_frame(7)
    keys.requires_grad_(True)
    values.requires_grad_(True)
    m.requires_grad_(True)
    prior = init_bases(1, 2, 8, 6, 5, like=keys)
    new = weighted_em(keys, values, m, prior)
    assert not new.kappa.requires_grad and not new.zeta.requires_grad
    new.nu.sum().backward()
    assert values.grad is not None and keys.grad is None and m.grad is None


# ----------------------------------------------------------------------------- matching

def reference_match(query_key, bases, tau, top_l):
    """SWEM.md §2.8 written out literally, for one batch element and object."""
    q = query_key[0] / (query_key[0].norm(dim=0, keepdim=True) + 1e-6)              # Ck, n
    kappa = bases.kappa[0, 0] / (bases.kappa[0, 0].norm(dim=1, keepdim=True) + 1e-6)  # 2, Ck, L
    a = torch.einsum("scl,cn->sln", kappa, q)
    e = torch.exp((a - a.amax(dim=(0, 1), keepdim=True)) / tau)
    p = e / e.sum(dim=(0, 1), keepdim=True)
    readout = torch.einsum("sln,svl->vn", p, bases.nu[0, 0])
    c = e.sort(dim=1, descending=True).values[:, :top_l].cumsum(dim=1)
    b = c[0] / (c[0] + c[1])
    return readout, torch.cat([b, 1 - b])


def test_match_bases_follows_the_specification():
    g = torch.Generator().manual_seed(8)
    bases = Bases(torch.randn(1, 2, 2, 8, 10, generator=g, dtype=torch.float64),
                  torch.randn(1, 2, 2, 6, 10, generator=g, dtype=torch.float64),
                  torch.ones(1, 2, 2, 1, 10, dtype=torch.float64))
    query = torch.randn(1, 8, 15, generator=g, dtype=torch.float64)
    readout, similarity = match_bases(query, bases, tau=0.05, top_l=4)
    assert readout.shape == (1, 2, 6, 15) and similarity.shape == (1, 2, 8, 15)
    for obj in range(2):
        ref_r, ref_s = reference_match(query, bases.objects(obj, obj + 1), 0.05, 4)
        assert torch.allclose(readout[0, obj], ref_r)
        assert torch.allclose(similarity[0, obj], ref_s)
    with pytest.raises(ValueError, match="top_l"):
        match_bases(query, bases, top_l=11)


# ----------------------------------------------------------------------------- golden parity

def first_frame(net, g):
    size = tuple(int(v) for v in g["work_hw"])
    grid = (size[0] // 16, size[1] // 16)
    x = work_image(g["frames"][0], size)
    k = int(g["first_mask"].max())
    one_hot = torch.stack([torch.from_numpy(g["first_mask"] == i + 1) for i in range(k)]).double()[None]
    with torch.inference_mode():
        query = net.encode_key(x)
        value = net.encode_value(x, query.f16, F.interpolate(one_hot, size=size, mode="nearest"))
        prior = init_bases(1, k, 128, 512, int(g["n_bases"]), like=value,
                           kappa=torch.from_numpy(g["kappa_init"]))
        first = weighted_em(query.key.flatten(2), value.flatten(3), mask_weights(one_hot, one_hot, grid),
                            prior, iters=int(g["em_iters"]), tau=float(g["tau"]))
    return query, value, first


@pytest.fixture(scope="module")
def frame0(golden, net64):
    return first_frame(net64, golden)


def test_frame0_features_and_first_bases_match_the_published_code(golden, frame0):
    query, value, first = frame0
    for name in ("f16_thin", "f16", "f8", "f4"):
        assert_close(getattr(query, name), golden[name], FEATURE_MAX, name)
    assert_close(query.key, golden["k16"], FEATURE_MAX, "k16")
    assert_close(value, golden["v16"], FEATURE_MAX, "v16")
    assert_bases_close(first, golden, "first")


def test_fusion_output_at_frame1_matches_the_published_code(golden, net64, frame0):
    first = frame0[2]
    x = work_image(golden["frames"][1], tuple(int(v) for v in golden["work_hw"]))
    with torch.inference_mode():
        query = net64.encode_key(x)
        context = net64.read(query, first, tau=float(golden["tau"]))
    assert int(golden["top_l"]) == net64.top_l
    assert_close(context[0], golden["context1"], FEATURE_MAX, "context1")


@pytest.fixture(scope="module")
def golden_run(golden, net64):
    """The published DAVIS procedure on the golden video through the inference core (float64)."""
    core = InferenceCore(net64, memory="swem", work_size=tuple(int(v) for v in golden["work_hw"]),
                         init_bases=golden["kappa_init"], n_bases=int(golden["n_bases"]),
                         em_iters=int(golden["em_iters"]), tau=float(golden["tau"]))
    frames = golden["frames"]
    out = []
    with torch.inference_mode():
        for t, frame in enumerate(frames):
            probs = core.step(t, frame, mask=golden["first_mask"] if t == 0 else None,
                              is_last=t == len(frames) - 1)
            out.append(probs.numpy())
    return np.stack(out, axis=1), core.policy


def test_davis_procedure_reproduces_the_published_probabilities(golden, golden_run):
    probs, _ = golden_run
    assert probs.dtype == np.float32 and probs.shape == golden["probs"].shape
    diff = np.abs(probs - golden["probs"])
    assert diff.max() <= PROB_MAX and diff.mean() <= PROB_MEAN, (diff.max(), diff.mean())
    top2 = np.sort(golden["probs"], axis=0)[-2:]
    confident = (top2[1] - top2[0]) > MARGIN
    assert np.array_equal(probs.argmax(axis=0)[confident], golden["masks"][confident])


def test_bases_after_the_last_memorised_frame_match_the_published_code(golden, golden_run):
    _, policy = golden_run
    assert policy.frames_merged == len(golden["frames"]) - 1      # every frame but the last
    assert_bases_close(policy.first, golden, "first")
    assert_bases_close(policy.update, golden, "update")
    assert policy.update.kappa.dtype == torch.float64


# ----------------------------------------------------------------------------- policy and protocols

def late_object_video(length=6, first_given=1, late=4):
    """64 x 96 video: object 3 given at ``first_given``, object 7 entering and given at ``late``."""
    video = SyntheticVideo(seed=3, height=64, width=96, num_objects=2, length=length,
                           object_ids=(3, 7), first_frames=(0, late))
    frames = list(video.frames())
    first, later = video.labels(first_given), video.labels(late)
    masks = {first_given: np.where(first == 3, 3, 0).astype(np.uint8),
             late: np.where(later == 7, 7, 0).astype(np.uint8)}
    return frames, masks


def test_youtube_work_size_rule():
    assert youtube_work_size(720, 1280) == (480, 848)       # 853.3 -> 853 -> nearest multiple 848
    assert youtube_work_size(1280, 720) == (848, 480)
    assert youtube_work_size(480, 856) == (480, 864)        # remainder 8 rounds up
    assert youtube_work_size(360, 640) == (368, 640)        # small frames: sides only rounded
    assert youtube_work_size(100, 90) == (96, 96)


def test_youtube_protocol_with_a_late_object(net64):
    frames, masks = late_object_video()
    core = InferenceCore(net64, memory="swem", work_size="youtube", n_bases=64)
    outputs, snapshots = [], {}
    with torch.inference_mode():
        for t, frame in enumerate(frames):
            outputs.append(core.step(t, frame, mask=masks.get(t), is_last=t == len(frames) - 1))
            policy = core.policy
            snapshots[t] = (policy.first, policy.update)
    assert outputs[0] is None                                 # before the first given object
    assert core.object_ids == [3, 7]
    assert core.policy.transform.work_size == (64, 96)
    assert [o.shape[0] for o in outputs[1:]] == [2, 2, 2, 3, 3]
    late = torch.from_numpy(masks[4] == 7)
    at_late = outputs[4]
    # inside the new mask the published rule zeroes every channel and appends the one-hot
    assert torch.all(at_late[2][late] == 1) and torch.all(at_late[:2][:, late] == 0)
    # outside it the known objects' probabilities are kept as segmented (no new aggregation)
    without_late = list(segment_video(net64, iter(frames[:5]), {1: masks[1]}, memory="swem",
                                      work_size="youtube", n_bases=64))
    assert np.allclose(at_late[:2][:, ~late].numpy(), without_late[4][:, ~late.numpy()], atol=1e-6)
    assert torch.all(at_late[2][~late] == 0)
    assert torch.allclose(at_late.sum(dim=0), torch.ones(64, 96, dtype=at_late.dtype))
    # frame 1 made `first`; the late object joined `first` with its bases from frame 4
    first3, update3 = snapshots[3]
    first4, update4 = snapshots[4]
    assert first3.num_objects == 1 and update3.num_objects == 1
    assert first4.num_objects == 2 and update4.num_objects == 2
    assert torch.equal(first4.kappa[:, :1], first3.kappa)
    assert torch.equal(first4.kappa[:, 1:], update4.kappa[:, 1:])
    assert torch.equal(first4.zeta[:, 1:], update4.zeta[:, 1:])


def test_memory_size_is_constant_in_video_length(net64):
    video = SyntheticVideo(seed=5, height=32, width=48, num_objects=2, length=7)
    core = InferenceCore(net64, memory="swem", work_size=None, n_bases=64)
    sizes = {}
    with torch.inference_mode():
        for t, frame in enumerate(video.frames()):
            core.step(t, frame, mask=video.labels(0) if t == 0 else None, is_last=t == 6)
            bases = core.policy._memory()
            sizes[t] = (core.stats(), sum(x.numel() for x in bases))
    assert sizes[0][0] == {"memory_frames": 1, "memory_features": 128, "memory_bases_total": 256,
                           "frames_merged": 1}
    stats2, numel2 = sizes[2]
    for t in range(3, 7):
        stats, numel = sizes[t]
        assert numel == numel2
        assert {k: v for k, v in stats.items() if k != "frames_merged"} == \
            {"memory_frames": 2, "memory_features": 256, "memory_bases_total": 512}
    assert sizes[6][0]["frames_merged"] == 6                 # every frame but the last


def run_three_frames(net, video, **options):
    core = InferenceCore(net, memory="swem", work_size=None, n_bases=64, **options)
    with torch.inference_mode():
        for t, frame in enumerate(video.frames()):
            probs = core.step(t, frame, mask=video.labels(0) if t == 0 else None, is_last=t == 2)
    return core, probs


def test_memory_dtype_float64_by_default_or_as_asked(net64):
    video = SyntheticVideo(seed=6, height=32, width=48, num_objects=1, length=3)
    core, probs = run_three_frames(net64, video)
    assert core.policy.update.nu.dtype == torch.float64 and probs.dtype == torch.float32
    assert core.stats()["memory_features"] == 256              # first + update, 2 sets x 64
    # the memory may be kept in another dtype than the network's
    mixed, mixed_probs = run_three_frames(net64, video, memory_dtype="float32")
    assert mixed.policy.update.nu.dtype == torch.float32
    assert (mixed_probs - probs).abs().max() < 1e-3
    # banks=1 reads the sequentially updated bank only
    single, _ = run_three_frames(net64, video, banks=1)
    assert single.stats()["memory_features"] == 128 and single.policy._memory() is single.policy.update


def test_swem_policy_rejects_bad_options(net64):
    from model.stcn.network import STCN
    with pytest.raises(ValueError, match="needs a SWEM network"):
        InferenceCore(STCN(), memory="swem")
    with pytest.raises(ValueError, match="top_l"):
        InferenceCore(net64, memory="swem", top_l=32)
    with pytest.raises(ValueError, match="multiples of 16"):
        InferenceCore(net64, memory="swem", work_size=(480, 854))
    with pytest.raises(ValueError, match="weighting"):
        InferenceCore(net64, memory="swem", weighting="hard")
    with pytest.raises(ValueError, match="memory_dtype"):
        InferenceCore(net64, memory="swem", memory_dtype="float16")
    core = InferenceCore(net64, memory="swem", work_size=None)
    with pytest.raises(ValueError, match="multiples of 16"):
        core.step(0, np.zeros((50, 70, 3), np.uint8), mask=np.ones((50, 70), np.uint8))


def test_eval_scripts_start_from_the_published_working_sizes():
    from evaluation.runner import policy_preset
    from inference.swem import SWEMMemory
    assert policy_preset(SWEMMemory, "davis") == {"work_size": (480, 864)}
    assert policy_preset(SWEMMemory, "youtube") == {"work_size": "youtube"}
