"""SWEM training: losses, curriculum, the training forward, a short overfit and a 2-process gloo run."""
from fractions import Fraction

import numpy as np
import pytest
import torch

from conftest import TINY_CROP, launch, one_clip_dataset, tiny_run_flags
from dataset.swem_frames import sample_swem_frame_indices
from model import load_network
from model.normalization import denormalize_image, normalize_image
from model.stcn import set_train_mode
from model.swem import SWEM
from model.swem.losses import SWEM_BOOTSTRAP, soft_iou_loss, swem_losses
from model.swem.training import swem_train_forward
from training.config import build_parser, resolve_config
from training.recipes import recipe_class
from training.recipes.swem import SWEM_CURRICULUM, SWEMRecipe
from training.trainer import Trainer, weights_path

SIZE = TINY_CROP


pytestmark = pytest.mark.usefixtures("one_thread")


def config(*flags):
    return resolve_config(build_parser().parse_args(["--model", "swem"] + [str(f) for f in flags]))


# ----------------------------------------------------------------------------- settings

def test_stage_defaults_are_the_published_ones():
    cfg = config("--stage", 3)
    assert (cfg.lr, cfg.weight_decay, cfg.optimizer) == (2e-5, 5e-4, "adamw")
    assert (cfg.iterations, cfg.steps, cfg.batch_size, cfg.num_frames, cfg.max_objects) == \
        (150_000, (125_000,), 8, 3, 2)
    stage0 = config("--stage", 0)
    assert stage0.single_object and stage0.batch_size == 16 and stage0.steps == (150_000,)
    assert recipe_class("swem").stage_defaults(1).iterations == 60_000
    with pytest.raises(ValueError, match="stages 0-3"):
        SWEMRecipe.stage_defaults(4)


def swem_skip(iteration, total, m=25, f=10):
    """SWEM.md §5.3 in exact arithmetic: cur_skip + 1 (the shared datasets' max_skip)."""
    x = Fraction(iteration, total)
    if x < Fraction(1, 10):
        cur = int(m * x * 10)
    elif x < Fraction(8, 10):
        cur = m
    elif x < Fraction(9, 10):
        cur = int(m - (m - f) * (x - Fraction(8, 10)) * 10)
    else:
        cur = f
    return cur + 1


def test_skip_curriculum_ramps_holds_and_falls_as_published():
    total = 150_000
    assert SWEM_CURRICULUM.max_skip(0, total) == 1
    assert SWEM_CURRICULUM.max_skip(15_000, total) == 26
    assert SWEM_CURRICULUM.max_skip(100_000, total) == 26
    assert SWEM_CURRICULUM.max_skip(140_000, total) == 11
    # every iteration agrees with the formula up to one iteration at each switch
    for it in range(0, total, 7):
        ours = SWEM_CURRICULUM.max_skip(it, total)
        assert ours in {swem_skip(max(0, it - 1), total), swem_skip(it, total), swem_skip(it + 1, total)}, it


def test_frame_sampler_grows_the_span_within_the_window():
    rng = np.random.default_rng(0)
    for length, skip in [(3, 1), (6, 26), (40, 4), (200, 26)]:
        window = max(1, min(skip, length // 3))
        orders = set()
        for _ in range(200):
            chosen = sample_swem_frame_indices(rng, length, 3, skip)
            ordered = sorted(chosen)
            assert len(set(chosen)) == 3 and all(0 <= i < length for i in chosen)
            assert chosen in (ordered, ordered[::-1])
            assert all(0 < b - a <= window for a, b in zip(ordered, ordered[1:])), (length, ordered)
            orders.add(chosen == ordered)
        assert orders == {True, False}                      # reversed about half of the time
    assert SWEMRecipe.frame_sampler is sample_swem_frame_indices
    with pytest.raises(ValueError, match="cannot give"):
        sample_swem_frame_indices(rng, 2, 3, 5)


# ----------------------------------------------------------------------------- losses

def test_bootstrap_keeps_the_hardest_30_percent_after_its_warm_up():
    assert SWEM_BOOTSTRAP.fraction(19_999) == 1.0
    assert SWEM_BOOTSTRAP.fraction(45_000) == pytest.approx(0.65)
    assert SWEM_BOOTSTRAP.fraction(70_000) == pytest.approx(0.30)
    assert SWEM_BOOTSTRAP.fraction(500_000) == pytest.approx(0.30)


def test_soft_iou_loss_values_and_invalid_slots():
    labels = torch.zeros(1, 2, 4, 4, dtype=torch.long)
    labels[:, :, :2] = 1
    perfect = [torch.where(torch.nn.functional.one_hot(labels[:, 1], 3).permute(0, 3, 1, 2) > 0,
                           torch.tensor(30.0), torch.tensor(-30.0))]
    selector = torch.tensor([[1.0, 0.0]])
    assert float(soft_iou_loss(perfect, labels, selector)) == pytest.approx(0.0, abs=1e-5)
    # a valid slot whose object is absent scores IoU 0 even when predicted empty (eps only below)
    assert float(soft_iou_loss(perfect, labels)) == pytest.approx(1 / 3, abs=1e-5)
    # uniform probabilities over 2 valid channels (slot 2 invalid): IoU of each channel is
    # sum min(0.5, y) / sum max(0.5, y) = (8 * 0.5) / (8 + 8 * 0.5) = 1/3
    uniform = [torch.zeros(1, 3, 4, 4)]
    assert float(soft_iou_loss(uniform, labels, selector)) == pytest.approx(1 - 1 / 3, abs=1e-5)
    # with the slot valid, three channels of 1/3: bg and obj1 IoU (8/3)/(8 + 8/3) = 1/4, obj2 0
    assert float(soft_iou_loss(uniform, labels)) == pytest.approx(1 - (0.25 + 0.25 + 0.0) / 3, abs=1e-5)


def test_swem_losses_add_ce_and_iou():
    g = torch.Generator().manual_seed(0)
    logits = [torch.randn(2, 3, 8, 8, generator=g) for _ in range(2)]
    probs = [torch.softmax(x, dim=1) for x in logits]
    labels = torch.randint(0, 3, (2, 3, 8, 8), generator=g)
    labels[1] = labels[1].clamp(max=1)                        # clip 1 has one object only
    selector = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    out = swem_losses(logits, labels, 0, selector)
    assert torch.allclose(out["total_loss"], out["ce_loss"] + out["iou_loss"])
    assert torch.allclose(out["ce_loss"], out["frame_losses"][0] + out["frame_losses"][1])
    logged = SWEMRecipe(3).losses({"logits": logits, "probs": probs}, {"labels": labels, "selector": selector}, 0)
    assert torch.allclose(logged["total_loss"], out["total_loss"])
    assert torch.equal(logged["loss_2"], out["frame_losses"][1]) and "frame_losses" not in logged
    assert logged["p"] == 1.0 and 0 <= float(logged["iou"]) <= 1


# ----------------------------------------------------------------------------- forward

@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return set_train_mode(SWEM())


def test_training_forward_shapes_and_gradients(network):
    torch.manual_seed(1)
    frames = torch.rand(2, 3, 3, 64, 64)
    labels = torch.zeros(2, 3, 64, 64, dtype=torch.long)
    labels[:, :, 8:40, 8:30] = 1
    labels[0, :, 40:60, 30:60] = 2
    selector = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
    out = swem_train_forward(network, frames, labels, selector)
    assert [x.shape for x in out["logits"]] == [(2, 3, 64, 64)] * 2
    assert torch.allclose(out["probs"][0].sum(dim=1), torch.ones(2, 64, 64))
    assert float(out["probs"][1][1, 2].detach().max()) < 1e-5          # the invalid slot stays empty
    network.zero_grad()
    swem_losses(out["logits"], labels, 0, selector)["total_loss"].backward()
    for name in ("value_encoder.conv1.weight", "key_proj.key_proj.weight", "key_comp.weight",
                 "swem_core.fusion_layer.layer_f.weight", "decoder.pred.weight", "key_encoder.conv1.weight"):
        grad = dict(network.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_denormalize_inverts_normalize():
    x = torch.rand(2, 3, 4, 5)
    assert torch.allclose(denormalize_image(normalize_image(x)), x, atol=1e-6)


# ----------------------------------------------------------------------------- runs

def test_training_overfits_one_synthetic_video(tmp_path):
    cfg = config("--stage", 3, "--id", "overfit", "--save_dir", tmp_path / "runs", "--size", SIZE,
                 "--batch_size", 1, "--iterations", 8, "--lr", 3e-4, "--num_workers", 0, "--no_pretrained",
                 "--no_progress", "--device", "cpu", "--log_every", 8)
    history = Trainer(cfg, dataset=one_clip_dataset(tmp_path, SIZE), record_history=True).run()
    start, end = np.mean(history[:2]), np.mean(history[-2:])
    assert end < 0.5 * start, history
    assert isinstance(load_network(weights_path(cfg, 8)), SWEM)


def test_single_object_forward_and_two_process_gloo_run_from_a_stage0_file(training_data, tmp_path):
    torch.manual_seed(2)
    stage0 = set_train_mode(SWEM(single_object=True))
    frames, labels = torch.rand(1, 3, 3, SIZE, SIZE), torch.zeros(1, 3, SIZE, SIZE, dtype=torch.long)
    labels[:, :, 4:20, 6:24] = 1
    out = swem_train_forward(stage0, frames, labels)
    assert [x.shape for x in out["logits"]] == [(1, 2, SIZE, SIZE)] * 2
    torch.save(stage0.state_dict(), tmp_path / "stage0.pth")

    flags = ["--model", "swem", *tiny_run_flags(training_data, tmp_path, 3, "s3", 2),
             "--load_network", tmp_path / "stage0.pth"]
    done = launch("train.py", flags, tmp_path, processes=2, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 process(es), 2 clips per iteration" in done.stdout
    network = load_network(tmp_path / "s3" / "s3_2.pth")
    assert isinstance(network, SWEM)
    widened = network.value_encoder.conv1.weight
    assert widened.shape[1] == 5
    # the two-process run trained: the weights moved away from the stage-0 file
    assert not torch.equal(widened[:, :4], stage0.value_encoder.conv1.weight)
