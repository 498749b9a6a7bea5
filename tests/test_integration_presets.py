"""Family integration: a recipe's clip sampler reaches the datasets, family options reach config.json
and the resume check, and memory policies' per-benchmark presets reach the eval scripts."""
import subprocess
import sys

import numpy as np
import pytest

import util.rde_recipe  # noqa: F401  (registers --model rde)
from conftest import REPO
from dataset.rde_frames import sample_rde_frame_indices
from dataset.sampler import SampleKey, sample_rng
from dataset.vos_dataset import sample_frame_indices
from util.train_config import build_parser, resolve_config
from util.trainer import build_dataset

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
