"""``train.py --model swem``: the SWEM training recipe for the shared trainer.

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

Further reading: SWEM.md §5 (project reference notes, not part of this repository).
"""
from dataset.curriculum import SkipCurriculum
from dataset.swem_frames import sample_swem_frame_indices
from model.normalization import denormalize_image
from model.swem import build_swem, swem_train_forward
from model.swem.losses import swem_losses
from training.recipes.base import StageDefaults, register_recipe
from training.recipes.stcn import STCNRecipe

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


@register_recipe
class SWEMRecipe(STCNRecipe):
    """SWEM (CVPR 2022): STCN's BatchNorm handling and stage-0 widening, its own network, forward,
    losses and stage defaults."""

    name = "swem"
    STAGES = SWEM_STAGES
    frame_sampler = staticmethod(sample_swem_frame_indices)


    def build_network(self, single_object, pretrained):
        return build_swem(single_object=single_object, pretrained=pretrained)

    def forward(self, network, batch, selector):
        # clips arrive ImageNet-normalised; SWEM's encoders normalise RGB in [0, 1] themselves
        return swem_train_forward(network, denormalize_image(batch["rgb"]), batch["labels"], selector)

    def losses(self, outputs, batch, iteration):
        labels, selector = batch["labels"], batch["selector"]
        result = swem_losses(outputs["logits"], labels, iteration, selector)
        frame_losses = result.pop("frame_losses")
        return {**result, **self.frame_metrics(frame_losses, outputs["probs"], labels, selector)}
