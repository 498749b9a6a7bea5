"""Bootstrapped cross-entropy and per-object IoU (model/losses.py)."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import load_golden
from model.losses import (BootstrapSchedule, bootstrap_fraction, bootstrapped_ce, bootstrapped_ce_terms,
                          frame_bootstrapped_ce, per_object_iou)


@pytest.mark.parametrize("name", ["stcn_train_seed4", "stcn_train_so_seed5"])
@pytest.mark.parametrize("it", [0, 45000, 100000])
def test_bootstrapped_ce_matches_published_losses(name, it):
    g = load_golden(name)
    logits = [torch.from_numpy(g["logits_1"]), torch.from_numpy(g["logits_2"])]
    labels = torch.from_numpy(g["labels"]).long()
    selector = torch.from_numpy(g["selector"])
    loss = bootstrapped_ce(logits, labels, it, selector)
    assert loss.item() == pytest.approx(float(g[f"loss_it{it}"]), rel=1e-4)
    assert bootstrap_fraction(it) == pytest.approx(float(g[f"p_it{it}"]))


def test_labels_of_supervised_frames_only_give_the_same_loss():
    g = load_golden("stcn_train_seed4")
    logits = [torch.from_numpy(g["logits_1"]), torch.from_numpy(g["logits_2"])]
    labels = torch.from_numpy(g["labels"]).long()
    selector = torch.from_numpy(g["selector"])
    whole = bootstrapped_ce(logits, labels, 45000, selector)
    supervised = bootstrapped_ce(logits, labels[:, 1:], 45000, selector)
    assert whole.item() == supervised.item()
    with pytest.raises(ValueError, match="labels hold 1 frames"):
        bootstrapped_ce(logits, labels[:, :1], 0, selector)


@pytest.mark.parametrize("it,p", [(0, 1.0), (19_999, 1.0), (20_000, 1.0), (45_000, 0.575),
                                  (70_000, 0.15), (300_000, 0.15)])
def test_bootstrap_fraction_at_named_iterations(it, p):
    assert bootstrap_fraction(it) == pytest.approx(p)


def test_schedule_is_configurable_for_other_model_families():
    swem_like = BootstrapSchedule(start_warm=20_000, end_warm=70_000, top_p=0.30)
    assert swem_like.fraction(70_000) == pytest.approx(0.30)
    assert swem_like.fraction(45_000) == pytest.approx(0.65)


def test_plain_ce_before_warm_up_and_hardest_pixels_after():
    torch.manual_seed(0)
    logits = torch.randn(3, 8, 8)
    labels = torch.randint(0, 3, (8, 8))
    plain = F.cross_entropy(logits[None], labels[None])
    assert frame_bootstrapped_ce(logits, labels, 1.0).item() == pytest.approx(plain.item())
    per_pixel = F.cross_entropy(logits[None], labels[None], reduction="none").flatten()
    hardest = per_pixel.sort(descending=True).values[: int(64 * 0.25)].mean()
    assert frame_bootstrapped_ce(logits, labels, 0.25).item() == pytest.approx(hardest.item())


def test_clip_with_one_object_ignores_second_object_channel():
    torch.manual_seed(1)
    logits = [torch.randn(1, 3, 6, 6)]
    labels = torch.randint(0, 2, (1, 2, 6, 6))
    with_one = bootstrapped_ce(logits, labels, 0, torch.tensor([[1.0, 0.0]]))
    expected = F.cross_entropy(logits[0][:, :2], labels[:, 1])
    assert with_one.item() == pytest.approx(expected.item())
    with_two = bootstrapped_ce(logits, labels, 0, torch.tensor([[1.0, 1.0]]))
    assert with_two.item() == pytest.approx(F.cross_entropy(logits[0], labels[:, 1]).item())


def test_loss_terms_are_per_frame_batch_means():
    torch.manual_seed(2)
    logits = [torch.randn(2, 3, 5, 5), torch.randn(2, 3, 5, 5)]
    labels = torch.randint(0, 3, (2, 3, 5, 5))
    terms, p = bootstrapped_ce_terms(logits, labels, 0)
    assert p == 1.0 and len(terms) == 2
    for f in range(2):
        expect = np.mean([F.cross_entropy(logits[f][b:b + 1], labels[b:b + 1, f + 1]).item()
                          for b in range(2)])
        assert terms[f].item() == pytest.approx(expect, rel=1e-6)


def test_bootstrapped_ce_has_gradients():
    logits = [torch.randn(1, 2, 4, 4, requires_grad=True)]
    labels = torch.randint(0, 2, (1, 2, 4, 4))
    bootstrapped_ce(logits, labels, 50_000).backward()
    assert logits[0].grad is not None and logits[0].grad.abs().sum() > 0


def test_per_object_iou():
    probs = torch.zeros(2, 3, 4, 4)
    probs[:, 0] = 1.0
    probs[0, 1, :2, :] = 0.9     # predicts rows 0-1 for object 1
    probs[0, 2, 3, :] = 0.9      # predicts row 3 for object 2
    labels = torch.zeros(2, 4, 4, dtype=torch.long)
    labels[0, :1, :] = 1         # object 1 truly row 0 -> IoU 4/8
    labels[0, 3, :2] = 2         # object 2 truly half of row 3 -> IoU 2/4
    iou = per_object_iou(probs, labels, torch.tensor([[1.0, 1.0], [1.0, 0.0]]))
    assert iou[0, 0].item() == pytest.approx(0.5)
    assert iou[0, 1].item() == pytest.approx(0.5)
    assert iou[1, 0].item() == 1.0          # empty prediction, empty truth
    assert math.isnan(iou[1, 1].item())     # slot not real
