"""``train.py --model swem``: the SWEM training recipe for the shared trainer (SWEM.md §5).

Stage defaults (the released scripts; batch sizes per process, the paper trained on one V100):
| stage | data | batch | iterations | lr x0.1 at | max skip curriculum |
| 0 | static images, single object (issue #2) | 16 | 300k | 150k | - |
| 1 | DAVIS 2017 only | 8 | 60k | 50k | ramp to 25, back to 10 |
| 2 | YouTubeVOS 2019 only | 8 | 150k | 125k | ramp to 25 (/5 on YouTubeVOS), back to 10 |
| 3 | DAVIS x5 + YouTubeVOS (the released script) | 8 | 150k | 125k | ramp to 25, back to 10 |
All stages: AdamW lr 2e-5, weight decay 5e-4, 3-frame clips (``dataset.swem_frames``), up to 2
objects; bootstrapped CE
(hardest 30 % after a 20k-70k warm-up) + soft-IoU loss. A stage-0 file gains its 5th value-input
channel by orthogonal init. The published code trains without AMP (pass --no_amp to match; the EM
and the matching always run in full precision). There is no BL30K stage in SWEM.
"""
import torch.nn as nn

from dataset.curriculum import SkipCurriculum
from dataset.swem_frames import sample_swem_frame_indices

from .train_recipes import RECIPES, StageDefaults, STCNRecipe

LR, WEIGHT_DECAY = 2e-5, 5e-4
DAVIS_MAX_SKIP, FINAL_FRACTION = 25, 0.4      # final skip max(1, floor(2 M / 5)) = 10
_EPS = 1e-9   # switch fractions sit on exact iteration boundaries; keep int(f * total) from rounding down


def swem_curriculum(max_skip=DAVIS_MAX_SKIP, ramp_end=0.1, hold_end=0.8, fall_end=0.9):
    """SWEM's skip curriculum as the shared step curriculum.

    SWEM draws each further frame within cur_skip + 1 positions, cur_skip = int() of a ramp
    0 -> M over the first 10 % of iterations, M until 80 %, falling linearly to F = max(1, 2M/5)
    at 90 %, then F. The shared datasets draw within ``max_skip`` positions, so max_skip =
    cur_skip + 1 at every iteration where the integer changes.
    """
    final = max(1, int(FINAL_FRACTION * max_skip))
    values, fractions = [], []
    for cur in range(1, max_skip + 1):
        values.append(cur + 1)
        fractions.append(ramp_end * cur / max_skip + _EPS)
    for cur in range(max_skip - 1, final - 1, -1):
        values.append(cur + 1)
        fractions.append(hold_end + (fall_end - hold_end) * (max_skip - 1 - cur) / (max_skip - final) + _EPS)
    return SkipCurriculum(initial=1, values=tuple(values), fractions=tuple(fractions))


SWEM_CURRICULUM = swem_curriculum()
SWEM_STAGES = {
    0: StageDefaults("static", 16, 300_000, (150_000,), single_object=True, lr=LR,
                     weight_decay=WEIGHT_DECAY, optimizer="adamw"),
    1: StageDefaults("davis", 8, 60_000, (50_000,), lr=LR, weight_decay=WEIGHT_DECAY, optimizer="adamw",
                     curriculum=SWEM_CURRICULUM),
    2: StageDefaults("youtube", 8, 150_000, (125_000,), lr=LR, weight_decay=WEIGHT_DECAY,
                     optimizer="adamw", curriculum=SWEM_CURRICULUM),
    3: StageDefaults("main", 8, 150_000, (125_000,), lr=LR, weight_decay=WEIGHT_DECAY, optimizer="adamw",
                     curriculum=SWEM_CURRICULUM),
}


class _SWEMStep(nn.Module):
    """Runs ``swem_train_forward`` through ``forward`` so DDP sees (and synchronises) the step."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, rgb, labels, selector):
        from model.swem_training import denormalize_image, swem_train_forward
        single = self.network.single_object
        objects = 1 if single else selector.shape[1]
        return swem_train_forward(self.network, denormalize_image(rgb), labels,
                                  None if single else selector[:, :objects])


class SWEMRecipe(STCNRecipe):
    """SWEM (CVPR 2022): STCN's BatchNorm handling and stage-0 widening, its own network, forward,
    losses and stage defaults."""

    name = "swem"
    frame_sampler = staticmethod(sample_swem_frame_indices)

    def stage_defaults(self, stage):
        if stage not in SWEM_STAGES:
            raise ValueError(f"SWEM has stages 0-3, not {stage}")
        return SWEM_STAGES[stage]

    def build_network(self, single_object, pretrained):
        from model.swem import build_swem
        return build_swem(single_object=single_object, pretrained=pretrained)

    def training_module(self, network):
        return _SWEMStep(network)

    def losses(self, outputs, batch, iteration):
        from model.swem_losses import swem_losses
        return swem_losses(outputs["logits"], outputs["probs"], batch["labels"], iteration, batch["selector"])


RECIPES["swem"] = SWEMRecipe
