"""inference.frame_size: the frame-size rules, and each memory policy's choice of evaluator frame size
(YouTubeVOS at 480p for every5/lfu/rde, full size for SWEM, which resizes frames itself)."""
import json

import numpy as np
import pytest
import torch

import eval_youtube
from dataset.synthetic import write_synthetic_youtube
from evaluation import resizing, runner
from inference import MEMORY_POLICIES, ObjectChannels, frame_size
from inference.frame_size import (KEEP_SIZE, SWEM_DAVIS_WORK_SIZE, SWEM_YOUTUBE_RULE, YOUTUBE_SHORT_SIDE,
                                  evaluator_short_side, swem_work_size, swem_youtube_work_size)
from inference.swem import SWEMMemory
from util.palette import read_label_png

HEIGHT, WIDTH = 64, 96
STCN_PROTOCOL_POLICIES = ("every5", "lfu", "rde")


def youtube_args(*flags):
    return eval_youtube.build_parser().parse_args(["--model", "m.pth", "--output", "o", *map(str, flags)])


def test_the_published_sizes_are_named_once():
    assert YOUTUBE_SHORT_SIDE == 480 and SWEM_DAVIS_WORK_SIZE == (480, 864) and KEEP_SIZE == 0
    assert SWEMMemory.PRESETS == {"davis": {"work_size": (480, 864)}, "youtube": {"work_size": "youtube"}}
    # the evaluation module's names are the same rules
    assert resizing.short_side_size is frame_size.short_side_size
    assert resizing.max_side_size is frame_size.max_side_size


def test_swem_work_size_for_each_work_size_option():
    assert swem_work_size(SWEM_DAVIS_WORK_SIZE, 480, 854) == (480, 864)
    assert swem_work_size(SWEM_YOUTUBE_RULE, 720, 1280) == swem_youtube_work_size(720, 1280) == (480, 848)
    assert swem_work_size(SWEM_YOUTUBE_RULE, 1080, 1920) == (480, 848)   # 480 x 853 rounded to 16
    assert swem_work_size(None, 64, 96) == (64, 96)
    with pytest.raises(ValueError, match="work_size=None needs frames whose sides are multiples of 16, got 60x96"):
        swem_work_size(None, 60, 96)


def test_swem_youtube_rule_and_the_480p_rule_share_the_short_side():
    for height, width in ((720, 1280), (1280, 720), (480, 854), (1080, 1440)):
        short = frame_size.short_side_size(height, width, YOUTUBE_SHORT_SIDE)
        assert swem_youtube_work_size(height, width) == tuple(frame_size.round_to_stride(s) for s in short)
    assert swem_youtube_work_size(360, 640) == (368, 640)   # smaller than 480p: never scaled up
    assert frame_size.short_side_size(360, 640, YOUTUBE_SHORT_SIDE) == (480, 853)   # STCN's rule scales up


def test_evaluator_short_side_rule():
    assert evaluator_short_side("youtube", resizes_frames_itself=False) == 480
    assert evaluator_short_side("davis", resizes_frames_itself=False) == 0
    assert evaluator_short_side("generic", resizes_frames_itself=False) == 0
    assert evaluator_short_side("youtube", resizes_frames_itself=True) == 0


@pytest.mark.parametrize("memory", STCN_PROTOCOL_POLICIES)
def test_stcn_protocol_policies_get_480p_on_youtube_and_full_size_on_davis(memory):
    policy = MEMORY_POLICIES[memory]
    for benchmark, expected in (("youtube", 480), ("davis", 0)):
        options = runner.policy_preset(policy, benchmark)
        assert not policy.resizes_frames_itself(options)
        assert policy.evaluator_short_side(benchmark, options) == expected
    args = youtube_args("--memory", memory)
    assert eval_youtube.resolve_short_side(args, runner.policy_options(args)) == 480


def test_swem_resizes_itself_so_the_evaluator_keeps_full_size():
    for benchmark in ("youtube", "davis"):
        options = runner.policy_preset(SWEMMemory, benchmark)
        assert SWEMMemory.resizes_frames_itself(options)
        assert SWEMMemory.evaluator_short_side(benchmark, options) == 0
    args = youtube_args("--memory", "swem")
    assert eval_youtube.resolve_short_side(args, runner.policy_options(args)) == 0
    # without a work size SWEM takes frames as they come, so the evaluator's 480p rule applies
    args = youtube_args("--memory", "swem", "--memory_option", "work_size=None")
    assert eval_youtube.resolve_short_side(args, runner.policy_options(args)) == 480


@pytest.mark.parametrize("memory, flag, expected", [("every5", 360, 360), ("every5", 0, 0), ("swem", 360, 360),
                                                    ("swem", 0, 0)])
def test_the_short_side_flag_wins_over_the_policy(memory, flag, expected):
    args = youtube_args("--memory", memory, "--short_side", flag)
    assert eval_youtube.resolve_short_side(args, runner.policy_options(args)) == expected


class Recorder:
    """Stands in for segment_video: records the frame and mask sizes it is handed and answers with
    every given object held where it was given (at the size it was handed)."""

    def __init__(self):
        self.frame_sizes, self.mask_sizes = set(), set()

    def __call__(self, network, frames, masks, memory="every5", required_frames=None, **options):
        channels = ObjectChannels.from_masks(masks)
        self.mask_sizes.update(m.shape for m in masks.values())
        latest = np.zeros(next(iter(masks.values())).shape, np.uint8)
        for t, frame in enumerate(frames):
            self.frame_sizes.add(frame.shape[:2])
            if t in masks:
                latest = np.where(masks[t] > 0, masks[t], latest)
            probs = np.zeros((channels.num_channels, *frame.shape[:2]), np.float32)
            probs[0][latest == 0] = 1
            for obj in channels.ids:
                probs[channels.channel_of(obj)][latest == obj] = 1
            yield probs


@pytest.fixture(scope="module")
def youtube_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("youtube")
    write_synthetic_youtube(root, seed=0, num_train=0, num_valid=1, length=6, height=HEIGHT, width=WIDTH,
                            max_objects=2)
    return root


@pytest.mark.parametrize("memory, processed", [("every5", (480, 720)), ("lfu", (480, 720)),
                                               ("swem", (HEIGHT, WIDTH))])
def test_youtube_eval_hands_each_policy_its_frame_size(memory, processed, youtube_set, tmp_path, monkeypatch):
    """eval_youtube.py: 64 x 96 frames reach every5/lfu at 480p and SWEM at full size; masks are
    written at full size either way."""
    recorder = Recorder()
    monkeypatch.setattr(eval_youtube, "segment_video", recorder)
    monkeypatch.setattr(runner, "load_model", lambda path, device: torch.nn.Linear(1, 1))
    monkeypatch.setattr(runner, "check_policy", lambda args, network, options: None)
    output = tmp_path / "out"
    assert eval_youtube.main(["--model", "unused.pth", "--yv_path", str(youtube_set), "--output", str(output),
                              "--memory", memory, "--device", "cpu"]) == 0
    assert recorder.frame_sizes == recorder.mask_sizes == {processed}
    config = json.loads((output / runner.CONFIG_NAME).read_text())
    assert config["short_side"] == (480 if memory != "swem" else 0) and config["status"] == "complete"
    written = sorted((output / "Annotations").glob("*/*.png"))
    assert written and all(read_label_png(png)[0].shape == (HEIGHT, WIDTH) for png in written)
