"""RDE-VOS training: mask perturbation, the three losses, the 5-frame STM/SAM forward, train.py --model rde."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import RepeatedClip, launch, tiny_run_flags
from dataset.mask_perturbation import IOU_RANGE, iou, perturb_mask, perturb_objects
from dataset.rde_frames import sample_rde_frame_indices
from dataset.synthetic import SyntheticVideo
from model import RDE, STCN, build_network, load_network, normalize_image
from model.rde.losses import channel_kl, frame_weights, mask_consistency_loss, segmentation_loss, unbiased_guidance_loss
from model.rde.sam import MemoryCompression
from model.rde.training import rde_train_forward
from training.recipes.rde import RDERecipe

pytestmark = pytest.mark.usefixtures("one_thread")


def _clip(seed, size=32, frames=5, objects=2):
    video = SyntheticVideo(seed=seed, height=size, width=size, num_objects=objects, length=frames)
    rgb, labels = zip(*(video.frame(t) for t in range(frames)))
    rgb = torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float() / 255
    return normalize_image(rgb), torch.from_numpy(np.stack(labels)).long()


# --- mask perturbation ---------------------------------------------------------------------------------

def test_mask_perturbation_reaches_its_iou_target():
    yy, xx = np.mgrid[:128, :128]
    disc = (yy - 64) ** 2 + (xx - 60) ** 2 < 40 ** 2
    rng = np.random.default_rng(0)
    gaps = []
    for _ in range(40):
        target = rng.uniform(*IOU_RANGE)
        perturbed = perturb_mask(disc, target, rng)
        gaps.append(target - iou(perturbed, disc))
    assert min(gaps) > 0                       # always below its target ...
    assert np.mean(gaps) < 0.1                 # ... and stopped soon after crossing it
    assert not perturb_mask(np.zeros((16, 16), bool), 0.9, rng).any()     # empty stays empty

    labels = SyntheticVideo(seed=5, height=96, width=96, num_objects=2, length=1).labels(0)
    masks, target = perturb_objects(labels, 2, np.random.default_rng(1))
    assert masks.shape == (2, 96, 96) and IOU_RANGE[0] <= target < IOU_RANGE[1]
    assert all(iou(masks[k], labels == k + 1) < target for k in range(2))


def test_rde_frame_sampling_walks_forward_within_the_skip():
    rng = np.random.default_rng(0)
    reversed_count = 0
    for length, skip in [(5, 0), (6, 3), (12, 5), (40, 25)] * 50:
        idx = sample_rde_frame_indices(rng, length, 5, skip)
        if idx[0] > idx[-1]:
            reversed_count += 1
            idx = idx[::-1]
        gaps = np.diff(idx)
        assert 0 <= idx[0] and idx[-1] < length and len(idx) == 5
        assert gaps.min() >= 1 and gaps.max() <= skip + 1
    assert 70 < reversed_count < 130                          # time reversal with probability 1/2
    assert sample_rde_frame_indices(np.random.default_rng(1), 5, 5, 0) in ([0, 1, 2, 3, 4], [4, 3, 2, 1, 0])
    with pytest.raises(ValueError, match="cannot give"):
        sample_rde_frame_indices(rng, 4, 5, 3)


# --- losses on hand-made tensors --------------------------------------------------------------------------

def test_frame_weights_halve_the_running_total():
    assert frame_weights(4) == [1 / 16, 1 / 8, 1 / 4, 1 / 2]
    assert frame_weights(2) == [1 / 4, 1 / 2]
    # two frames of 2-class logits on a 1x2 image: CE per frame by hand
    logits = [torch.tensor([[[[0.0, 0.0]], [[0.0, math.log(3)]]]]), torch.tensor([[[[2.0, 0.0]], [[0.0, 0.0]]]])]
    labels = torch.tensor([[[[0, 0]], [[1, 1]], [[0, 1]]]])                 # B=1, T=3, 1x2
    ce1 = (math.log(2) + -math.log(3 / 4)) / 2
    ce2 = (-math.log(math.exp(2) / (math.exp(2) + 1)) + math.log(2)) / 2
    total, frames, p = segmentation_loss(logits, labels, iteration=0)
    assert p == 1.0
    assert frames[0].item() == pytest.approx(ce1, rel=1e-6) and frames[1].item() == pytest.approx(ce2, rel=1e-6)
    assert total.item() == pytest.approx(ce1 / 4 + ce2 / 2, rel=1e-6)


def test_channel_kl_is_the_element_mean_of_kldivloss():
    teacher = torch.tensor([0.0, math.log(3)]).view(1, 2, 1, 1)            # p = (1/4, 3/4)
    student = torch.zeros(1, 2, 1, 1)                                         # q = (1/2, 1/2)
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert channel_kl(teacher, student).item() == pytest.approx(kl / 2, rel=1e-6)   # mean over B*C*h*w
    assert channel_kl(teacher, teacher).item() == pytest.approx(0.0, abs=1e-7)
    g = torch.Generator().manual_seed(0)
    t, s = torch.randn(2, 8, 3, 4, generator=g), torch.randn(2, 8, 3, 4, generator=g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = F.kl_div(F.log_softmax(s, 1), F.softmax(t, 1), reduction="mean")
    torch.testing.assert_close(channel_kl(t, s), reference)


def test_mask_consistency_and_guidance_sum_over_object_slots():
    g = torch.Generator().manual_seed(1)
    true, perturbed = torch.randn(2, 2, 512, 2, 3, generator=g), torch.randn(2, 2, 512, 2, 3, generator=g)
    expected = channel_kl(true[:, 0], perturbed[:, 0]) + channel_kl(true[:, 1], perturbed[:, 1])
    torch.testing.assert_close(mask_consistency_loss(true, perturbed), expected)
    same = true.clone()
    same[:, 1] = perturbed[:, 1]                                              # e.g. an empty second slot
    torch.testing.assert_close(mask_consistency_loss(same, perturbed), channel_kl(true[:, 0], perturbed[:, 0]))
    stm, sam = torch.randn(1, 2, 1024, 2, 2, generator=g), torch.randn(1, 2, 1024, 2, 2, generator=g)
    assert unbiased_guidance_loss(stm, sam).item() > 0
    assert unbiased_guidance_loss(stm, stm).item() == pytest.approx(0.0, abs=1e-6)
    # the teacher is not detached (as released): gradients reach both sides
    stm.requires_grad_(True)
    sam.requires_grad_(True)
    unbiased_guidance_loss(stm, sam).backward()
    assert stm.grad.abs().sum() > 0 and sam.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="differ"):
        unbiased_guidance_loss(stm[:, :1], sam)


# --- the training forward ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def rde_network():
    torch.manual_seed(0)
    network = RDERecipe(3).build_network(single_object=False, pretrained=False)
    return RDERecipe(3).set_train_mode(network)


def test_forward_uses_stm_on_frames_1_3_and_sam_on_frames_2_4(rde_network):
    rgb, labels = _clip(0)
    rgb, labels = rgb[None], labels[None]
    perturbed = torch.from_numpy(perturb_objects(labels[0, 0].numpy(), 2, np.random.default_rng(0))[0])[None].float()
    calls = []
    update = rde_network.update_memory

    def counting(*args):
        calls.append(args[2])
        return update(*args)

    def zero_rde(*args):
        return tuple(torch.zeros_like(x) for x in update(*args))

    with torch.no_grad():
        rde_network.update_memory = counting
        out = rde_train_forward(rde_network, rgb, labels, perturbed)
        rde_network.update_memory = zero_rde
        zeroed = rde_train_forward(rde_network, rgb, labels, perturbed)
    del rde_network.update_memory
    assert len(calls) == 3                                      # SAM with frames 1, 2, 3 (theta = 1)
    assert len(out["logits"]) == 4 and out["logits"][0].shape == (1, 3, 32, 32)
    assert [a.shape for pair in out["ug"] for a in pair] == [(1, 2, 1024, 2, 2)] * 4
    for f, (a, b) in enumerate(zip(out["logits"], zeroed["logits"]), start=1):
        changed = not torch.allclose(a, b)
        assert changed == (f in (2, 4)), f                      # only the SAM-pattern frames read the RDE
    true_value, propagated = out["mc"]
    assert not torch.allclose(true_value, propagated)           # frame 0 propagates the perturbed masks


def test_stage0_single_object_three_frames_no_sam():
    recipe = RDERecipe(0)
    torch.manual_seed(0)
    network = recipe.build_network(single_object=True, pretrained=False)
    assert type(network) is STCN and network.single_object
    rgb, labels = _clip(1, objects=1)
    sample = {"rgb": rgb, "labels": labels, "selector": torch.tensor([1.0, 0.0])}
    sample.update(recipe.sample_extras(sample, np.random.default_rng(0)))
    assert sample["perturbed_masks"].shape == (2, *labels.shape[1:]) and not sample["perturbed_masks"][1].any()
    batch = {k: v[None] for k, v in sample.items()}
    out = recipe.training_module(network)(batch)
    assert len(out["logits"]) == 2 and out["ug"] == []
    losses = recipe.losses(out, batch, iteration=0)
    torch.testing.assert_close(losses["seg_loss"], losses["loss_1"] / 4 + losses["loss_2"] / 2)
    torch.testing.assert_close(losses["total_loss"], losses["seg_loss"] + 10 * losses["mc_loss"])


def test_stage_defaults_and_weight_flags():
    assert [RDERecipe.stage_defaults(s).iterations for s in range(4)] == [75_000, 500_000, 75_000, 150_000]
    from training.config import build_parser, resolve_config
    clip_lengths = [resolve_config(build_parser().parse_args(["--model", "rde", "--stage", str(s)])).num_frames
                    for s in range(4)]
    assert clip_lengths == [3, 5, 5, 5]
    recipe = RDERecipe(2)
    assert recipe.options["mc_weight"] == 5 and recipe.schedule.start_warm == 5_000
    recipe = RDERecipe(3, {"ug_f4_weight": 2})
    assert recipe.options["ug_f4_weight"] == 2.0
    assert recipe.options["mc_weight"] == 10 and recipe.schedule.end_warm == 70_000
    with pytest.raises(ValueError, match="stages 0-3"):
        RDERecipe(4)
    with pytest.raises(ValueError, match="unknown RDE loss settings"):
        RDERecipe(3, {"mc": 1})


def test_zero_sam_init_keeps_the_recurrent_rde_bounded():
    """Released default init: the cubic non-local term makes the RDE explode from keys of std 2 (our
    random encoders); --sam_init zero starts the non-local blocks as the identity and stays bounded."""
    stds = {}
    for init in ("default", "zero"):
        torch.manual_seed(0)
        sam = MemoryCompression()
        if init == "zero":
            sam.zero_init_non_local()
            x = torch.randn(1, 64, 2, 4, 4)
            torch.testing.assert_close(sam.key_encoder.non_local(x), x)
        g = torch.Generator().manual_seed(1)
        key, value = 2 * torch.randn(1, 64, 8, 8, generator=g), torch.randn(1, 2, 512, 8, 8, generator=g)
        stds[init] = []
        with torch.no_grad():
            for _ in range(8):
                key, value = sam(key, value, 2 * torch.randn(1, 64, 8, 8, generator=g),
                                 torch.randn(1, 2, 512, 8, 8, generator=g))
                stds[init].append(float(key.std()))
    assert not stds["default"][3] < 1e3
    assert max(stds["zero"]) < 3
    recipe = RDERecipe(3, {"sam_init": "zero"})
    network = recipe.build_network(single_object=False, pretrained=False)
    assert network.mem_compress.value_encoder.non_local.W.weight.abs().sum() == 0


def test_load_network_from_stcn_stage0_keeps_default_sam(tmp_path):
    torch.manual_seed(3)
    stage0 = build_network(single_object=True).state_dict()
    network = RDERecipe(3).build_network(single_object=False, pretrained=False)
    default_sam = {k: v.clone() for k, v in network.state_dict().items() if k.startswith("mem_compress.")}
    prepared = RDERecipe(3).prepare_state_dict(stage0, network)
    network.load_state_dict(prepared, strict=True)
    for name, value in default_sam.items():
        assert torch.equal(network.state_dict()[name], value)
    fifth = network.value_encoder.conv1.weight[:, 4]
    assert fifth.abs().sum() > 0                                 # orthogonal, not zeros


# --- train.py --model rde ------------------------------------------------------------------------------------

def test_two_process_gloo_run(training_data, tmp_path):
    torch.save(build_network(single_object=True).state_dict(), tmp_path / "stage0.pth")
    flags = ["--model", "rde", *tiny_run_flags(training_data, tmp_path, 3, "r3", 2),
             "--load_network", tmp_path / "stage0.pth", "--mc_weight", 5]
    done = launch("train.py", flags, tmp_path, processes=2, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 process(es), 2 clips per iteration" in done.stdout
    network = load_network(tmp_path / "r3" / "r3_2.pth")
    assert isinstance(network, RDE)                              # recognised from its SAM weights


def test_training_overfits_one_synthetic_video(tmp_path):
    from training.config import build_parser, resolve_config
    from training.trainer import Trainer
    rgb, labels = _clip(11, frames=4)   # 4 frames, not the recipe's 5: the same code path, less time
    clip = {"rgb": rgb, "labels": labels, "selector": torch.ones(2), "name": "v",
            "frame_indices": torch.arange(4)}
    clip.update(RDERecipe.sample_extras(clip, np.random.default_rng(0)))
    flags = ["--model", "rde", "--stage", "3", "--id", "overfit", "--save_dir", tmp_path, "--size", 32,
             "--batch_size", 1, "--iterations", 6, "--lr", 1e-4, "--num_workers", 0, "--no_pretrained",
             "--no_progress", "--device", "cpu", "--log_every", 8, "--sam_init", "zero"]
    args = build_parser().parse_args([str(f) for f in flags])
    history = Trainer(resolve_config(args), dataset=RepeatedClip(clip), record_history=True).run()
    assert all(np.isfinite(history))
    start, end = np.mean(history[:2]), np.mean(history[-3:])
    assert end < 0.5 * start and max(history) <= 1.5 * history[0], history
