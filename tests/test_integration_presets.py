"""Family integration: a recipe's clip sampler reaches the datasets, family options reach config.json
and the resume check, and memory policies' per-benchmark presets reach the eval scripts."""
import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import train
import util.rde_recipe  # noqa: F401  (registers --model rde)
from conftest import REPO
from dataset.rde_frames import sample_rde_frame_indices
from dataset.sampler import SampleKey, sample_rng
from dataset.vos_dataset import sample_frame_indices
from util.train_config import build_parser, resolve_config
from util.rde_recipe import RDERecipe
from util.trainer import Trainer, build_dataset

MAX_SKIP = 10   # the curriculum's value carried by the sample keys below (YouTubeVOS divides it by 5)


@pytest.fixture(scope="module")
def video_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("video_data")
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_synthetic_training_data.py"), "--output",
                    str(root), "--size", "40", "48", "--videos", "2", "--frames", "8", "--parts", "davis",
                    "youtube"], check=True, capture_output=True)
    return root


def main_stage_config(model, root):
    return resolve_config(build_parser().parse_args(
        ["--model", model, "--stage", "3", "--size", "32", "--no_pretrained", "--davis_root", str(root / "DAVIS"),
         "--yv_root", str(root / "YouTube")]))


# ----------------------------------------------------------------------------- 1. clip sampling
@pytest.mark.parametrize("model, sampler, frames", [("rde", sample_rde_frame_indices, 5),
                                                     ("stcn", sample_frame_indices, 3)])
def test_training_clips_are_drawn_by_the_recipes_frame_sampler(model, sampler, frames, video_root):
    dataset = build_dataset(main_stage_config(model, video_root))
    parts = dataset.datasets                      # DAVIS x5, then YouTubeVOS
    assert [p.frame_sampler for p in parts] == [sampler, sampler]
    orders = set()
    for part, offset in zip(parts, dataset.offsets):
        skip = MAX_SKIP // part.skip_divisor
        for n in range(8):
            key = SampleKey(int(offset), (7, n), MAX_SKIP)
            clip = dataset[key]
            length = len(part.videos[0][1])
            # the sampler is the first thing drawing from the sample's generator
            expected = sampler(sample_rng(key), length, frames, skip)
            indices = clip["frame_indices"].tolist()
            assert indices == expected and clip["rgb"].shape[0] == frames
            steps = np.diff(indices)
            assert (np.all(steps > 0) or np.all(steps < 0)) and len(set(indices)) == frames
            if model == "rde":   # a forward walk: consecutive gaps 1..skip+1
                assert np.abs(steps).max() <= skip + 1
            orders.add(bool(steps[0] > 0))
    assert orders == {True, False}, "half the clips are played backwards"


# ----------------------------------------------------------------------------- 2. family options
def rde_flags(*flags):
    parser = build_parser()
    RDERecipe.add_arguments(parser)
    return resolve_config(parser.parse_args([str(f) for f in ("--model", "rde", *flags)]))


def test_family_options_resolve_from_the_recipe_with_stage_defaults():
    assert resolve_config(build_parser().parse_args(["--stage", "3"])).family_options == {}
    assert rde_flags("--stage", 2).family_options == {"mc_weight": 5.0, "ug_f2_weight": 5.0,
                                                      "ug_f4_weight": 5.0, "sam_init": "default"}
    assert rde_flags("--stage", 3, "--ug_f4_weight", 2, "--sam_init", "zero").family_options == {
        "mc_weight": 10.0, "ug_f2_weight": 10.0, "ug_f4_weight": 2.0, "sam_init": "zero"}


def test_trainer_applies_the_configs_family_options_and_refuses_foreign_ones():
    cfg = rde_flags("--stage", 3, "--mc_weight", 3)
    recipe = RDERecipe().configure(3, mc_weight=7)          # configured otherwise: the config wins
    trainer = Trainer(cfg, recipe=recipe)
    assert recipe.settings["mc_weight"] == 3.0 and trainer.cfg.family_options["mc_weight"] == 3.0
    bare = Trainer(dataclasses.replace(cfg, family_options={}))   # none given: the stage's values, recorded
    assert bare.cfg.family_options == {"mc_weight": 10.0, "ug_f2_weight": 10.0, "ug_f4_weight": 10.0,
                                       "sam_init": "default"}
    stcn = resolve_config(build_parser().parse_args(["--stage", "3"]))
    with pytest.raises(ValueError, match="model 'stcn' has no family options"):
        Trainer(dataclasses.replace(stcn, family_options={"mc_weight": 1.0}))


@pytest.fixture(scope="module")
def static_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("static_data")
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_synthetic_training_data.py"), "--output",
                    str(root), "--size", "40", "48", "--images", "2", "--parts", "static"],
                   check=True, capture_output=True)
    return root / "static"


def test_family_options_reach_config_json_and_the_resume_check(static_root, tmp_path, capsys):
    flags = ["--model", "rde", "--stage", "0", "--id", "r0", "--save_dir", tmp_path, "--size", 32,
             "--batch_size", 1, "--iterations", 2, "--num_workers", 0, "--no_pretrained", "--no_progress",
             "--device", "cpu", "--static_root", static_root]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train.main([str(f) for f in flags + ["--stop_at", 1, "--mc_weight", 7, "--sam_init", "zero"]])
        saved = json.loads((tmp_path / "r0" / "config.json").read_text())
        assert saved["family_options"] == {"mc_weight": 7.0, "ug_f2_weight": 0.0, "ug_f4_weight": 0.0,
                                           "sam_init": "zero"}
        capsys.readouterr()
        train.main([str(f) for f in flags + ["--resume", "--mc_weight", 3, "--sam_init", "zero"]])
    finally:
        torch.set_num_threads(threads)
    err = capsys.readouterr().err
    assert "resuming with changed settings {'family_options.mc_weight': (7.0, 3.0)}" in err, err
    assert json.loads((tmp_path / "r0" / "config.json").read_text())["family_options"]["mc_weight"] == 3.0
