"""Family integration: a recipe's clip sampler reaches the datasets, family options reach config.json
and the resume check, and memory policies' per-benchmark presets reach the eval scripts."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from test_eval_scripts import HEIGHT, WIDTH, run_script

import eval_davis
import eval_youtube
import train
from conftest import tiny_run_flags
from dataset.rde_frames import sample_rde_frame_indices
from dataset.sampler import SampleKey, sample_rng
from dataset.synthetic import write_synthetic_davis, write_synthetic_youtube
from dataset.vos_dataset import sample_frame_indices
from evaluation import runner
from inference.rde import RDE_PRESETS
from training.config import build_parser, resolve_config
from training.trainer import Trainer, build_dataset

MAX_SKIP = 10   # the curriculum's value carried by the sample keys below (YouTubeVOS divides it by 5)


def main_stage_config(model, root):
    return resolve_config(build_parser().parse_args(
        ["--model", model, "--stage", "3", "--size", "32", "--no_pretrained", "--davis_root", str(root / "DAVIS"),
         "--yv_root", str(root / "YouTube")]))


# ----------------------------------------------------------------------------- 1. clip sampling
@pytest.mark.parametrize("model, sampler, frames", [("rde", sample_rde_frame_indices, 5),
                                                     ("stcn", sample_frame_indices, 3)])
def test_training_clips_are_drawn_by_the_recipes_frame_sampler(model, sampler, frames, training_data):
    dataset = build_dataset(main_stage_config(model, training_data))
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
    return resolve_config(parser.parse_args([str(f) for f in ("--model", "rde", *flags)]))


def test_family_options_resolve_from_the_recipe_with_stage_defaults():
    assert resolve_config(build_parser().parse_args(["--stage", "3"])).family_options == {}
    assert rde_flags("--stage", 2).family_options == {"mc_weight": 5.0, "ug_f2_weight": 5.0,
                                                      "ug_f4_weight": 5.0, "sam_init": "default"}
    assert rde_flags("--stage", 3, "--ug_f4_weight", 2, "--sam_init", "zero").family_options == {
        "mc_weight": 10.0, "ug_f2_weight": 10.0, "ug_f4_weight": 2.0, "sam_init": "zero"}


def test_trainer_applies_the_configs_family_options_and_refuses_foreign_ones():
    cfg = rde_flags("--stage", 3, "--mc_weight", 3)
    trainer = Trainer(cfg)                                  # the recipe is built from the config
    assert trainer.recipe.options["mc_weight"] == 3.0 and trainer.cfg.family_options["mc_weight"] == 3.0
    bare = Trainer(dataclasses.replace(cfg, family_options={}))   # none given: the stage's values, recorded
    assert bare.cfg.family_options == {"mc_weight": 10.0, "ug_f2_weight": 10.0, "ug_f4_weight": 10.0,
                                       "sam_init": "default"}
    stcn = resolve_config(build_parser().parse_args(["--stage", "3"]))
    with pytest.raises(ValueError, match="model 'stcn' has no family options"):
        Trainer(dataclasses.replace(stcn, family_options={"mc_weight": 1.0}))


def test_family_options_reach_config_json_and_the_resume_check(training_data, tmp_path, capsys):
    flags = ["--model", "rde", *tiny_run_flags(training_data, tmp_path, 0, "r0", 2)]
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


# ----------------------------------------------------------------------------- 3. evaluation presets
def eval_args(script, *flags):
    return script.build_parser().parse_args(["--model", "m.pth", "--output", "out", *map(str, flags)])


def test_eval_memory_options_layer_preset_then_memory_option_then_published_flags():
    rde_davis = runner.policy_options(eval_args(eval_davis, "--memory", "rde"))
    assert rde_davis == RDE_PRESETS["davis"] and rde_davis["top_k"] == 40 and rde_davis["mem_every"] == 3
    assert runner.policy_options(eval_args(eval_youtube, "--memory", "rde")) == {
        "layout": "two-frames-compress", "top_k": 20, "mem_every": 4}
    args = eval_args(eval_youtube, "--memory", "rde", "--memory_option", "top_k=9", "--memory_option",
                     "layout=compress", "--mem_every", 2)
    assert runner.policy_options(args) == {"layout": "compress", "top_k": 9, "mem_every": 2}
    assert runner.policy_options(eval_args(eval_youtube, "--memory", "rde", "--memory_option", "top_k=9",
                                           "--top", 7))["top_k"] == 7
    # every-5 has no preset: STCN's defaults on both benchmarks
    for script in (eval_davis, eval_youtube):
        args = eval_args(script)
        options = runner.policy_options(args)
        assert options == {}
        resolved = runner.resolved_policy_options(args, options)
        assert (resolved["top_k"], resolved["mem_every"]) == (20, 5)
    assert runner.policy_options(eval_args(eval_davis, "--memory", "rde"), benchmark="youtube")["mem_every"] == 4


def test_any_policy_brings_presets_without_touching_the_runner(monkeypatch):
    from inference import MEMORY_POLICIES
    from inference.every_k import EveryKMemory

    class Preset(EveryKMemory):
        PRESETS = {"youtube": {"top_k": 11, "max_frames": 6}}

    monkeypatch.setitem(MEMORY_POLICIES, "preset", Preset)
    assert runner.policy_options(eval_args(eval_youtube, "--memory", "preset")) == {"top_k": 11, "max_frames": 6}
    assert runner.policy_options(eval_args(eval_davis, "--memory", "preset")) == {}


@pytest.fixture(scope="module")
def eval_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval_sets")
    write_synthetic_davis(root / "davis", seed=5, num_train=0, num_val=1, num_test_dev=0, length=3,
                          height=HEIGHT, width=WIDTH, max_objects=2)
    write_synthetic_youtube(root / "youtube", seed=0, num_train=0, num_valid=1, length=6, height=HEIGHT,
                            width=WIDTH, max_objects=2)
    return root


@pytest.mark.parametrize("script, data_flag, extra, top_k, mem_every", [
    (eval_davis, "--davis_path", [], 40, 3),
    (eval_youtube, "--yv_path", [], 20, 4),
    (eval_youtube, "--yv_path", ["--top", 7], 7, 4),          # an explicit published flag wins
])
def test_eval_scripts_run_rde_with_its_benchmark_preset(script, data_flag, extra, top_k, mem_every, eval_sets,
                                                        random_checkpoint, tmp_path, capsys):
    data = eval_sets / ("davis" if script is eval_davis else "youtube")
    output = tmp_path / "out"
    flags = ["--model", random_checkpoint("rde"), data_flag, data, "--output", output, "--memory", "rde",
             "--device", "cpu"]
    if script is eval_youtube:
        flags += ["--short_side", 48]
    assert run_script(script, flags + extra) is None
    options = json.loads((output / runner.CONFIG_NAME).read_text())["memory_options"]
    assert options == {"layout": "two-frames-compress", "top_k": top_k, "mem_every": mem_every,
                       "include_last": False}
    assert f"'top_k': {top_k}" in capsys.readouterr().out    # the printed configuration
