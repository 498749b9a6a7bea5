"""``train.py --model rde``: the RDE-VOS training recipe for the shared trainer.

Stage defaults (the training commands of the released RDE-VOS README; batch sizes per process):
| stage | data | batch | iterations | lr x0.1 at | lr | L_MC | L_UG f2/f4 | BCE warm-up |
| 0 | static, single object, no SAM | 16 (x4 GPUs) | 75k | 37.5k | 2e-5 | 10 | - | 5k-17.5k |
| 1 | BL30K | 4 (x2) | 500k | 400k | 1e-5 | 10 | 10/10 | 20k-70k |
| 2 | DAVIS x5 + YouTubeVOS after BL30K | 8 (x2) | 75k | 62.5k | 2e-5 | 5 | 5/5 | 5k-17.5k |
| 3 | DAVIS x5 + YouTubeVOS, no BL30K | 4 (x2) | 150k | 125k | 2e-5 | 10 | 10/10 | 20k-70k |
The loss weights are flags (--mc_weight, --ug_f2_weight, --ug_f4_weight); the paper uses 10 for all.
Clips have 5 frames (stage 0: 3, its network is STCN's single-object one, no SAM); video clips pick
their frames by RDE's forward walk with 50% time reversal (``dataset/rde_frames.py``), and each sample
carries its perturbed frame-0 masks, drawn from the sample's own RNG (``dataset/mask_perturbation.py``).
A SAM not found in --load_network keeps the new network's init: PyTorch's default (released
trainer, --sam_init default) or non-local blocks starting as the identity (--sam_init zero), which
avoids the recurrent RDE exploding when the encoders are not ImageNet-initialised.

Further reading: RDE.md section 7 (project reference notes, not part of this repository).
"""
from functools import partial

from dataset.curriculum import BL30K_CURRICULUM, MAIN_CURRICULUM
from dataset.mask_perturbation import add_perturbed_first_masks
from dataset.rde_frames import sample_rde_frame_indices
from model.checkpoint import widen_value_input
from model.losses import BootstrapSchedule
from model.rde import RDE, rde_train_forward
from model.rde.losses import MC_WEIGHT, UG_WEIGHT, mask_consistency_loss, segmentation_loss, unbiased_guidance_loss
from model.stcn import build_network, set_train_mode
from training.recipes.base import StageDefaults, TrainingRecipe, register_recipe

STAGE0_FRAMES = 3
RDE_STAGES = {
    0: StageDefaults("static", 16, 75_000, (37_500,), single_object=True, lr=2e-5, num_frames=STAGE0_FRAMES,
                     extra={"mc_weight": MC_WEIGHT, "ug_f2_weight": 0.0, "ug_f4_weight": 0.0, "warm": (5_000, 17_500)}),
    1: StageDefaults("bl30k", 4, 500_000, (400_000,), lr=1e-5, curriculum=BL30K_CURRICULUM,
                     extra={"mc_weight": MC_WEIGHT, "ug_f2_weight": UG_WEIGHT, "ug_f4_weight": UG_WEIGHT,
                            "warm": (20_000, 70_000)}),
    2: StageDefaults("main", 8, 75_000, (62_500,), lr=2e-5, curriculum=MAIN_CURRICULUM,
                     extra={"mc_weight": 5.0, "ug_f2_weight": 5.0, "ug_f4_weight": 5.0, "warm": (5_000, 17_500)}),
    3: StageDefaults("main", 4, 150_000, (125_000,), lr=2e-5, curriculum=MAIN_CURRICULUM,
                     extra={"mc_weight": MC_WEIGHT, "ug_f2_weight": UG_WEIGHT, "ug_f4_weight": UG_WEIGHT,
                            "warm": (20_000, 70_000)}),
}
WEIGHT_FLAGS = ("mc_weight", "ug_f2_weight", "ug_f4_weight")
SAM_INITS = ("default", "zero")


@register_recipe
class RDERecipe(TrainingRecipe):
    """RDE-VOS (CVPR 2022): SAM + STM patterns on 5-frame clips, L_seg + L_MC + L_UG."""

    name = "rde"
    STAGES = RDE_STAGES
    OPTION_NAMES = WEIGHT_FLAGS + ("sam_init",)
    num_frames = 5
    frame_sampler = staticmethod(sample_rde_frame_indices)
    sample_extras = staticmethod(partial(add_perturbed_first_masks, num_objects=TrainingRecipe.max_objects))

    def __init__(self, stage, options=None):
        super().__init__(stage, options)
        start, end = self.defaults.extra["warm"]
        self.schedule = BootstrapSchedule(start_warm=start, end_warm=end)

    @staticmethod
    def add_arguments(parser):
        g = parser.add_argument_group("RDE losses (--model rde; unset = the stage's released value)")
        g.add_argument("--mc_weight", type=float, help="mask-consistency weight (paper 10; stage-2 command 5)")
        g.add_argument("--ug_f2_weight", type=float, help="unbiased guidance at frame 2 (paper 10; stage 2: 5)")
        g.add_argument("--ug_f4_weight", type=float, help="unbiased guidance at frame 4 (paper 10; stage 2: 5)")
        g.add_argument("--sam_init", choices=SAM_INITS,
                       help="init of a SAM not loaded from --load_network: PyTorch default (released, the "
                            "default) or zero = non-local blocks start as the identity (stable from random encoders)")

    @classmethod
    def resolve_options(cls, stage, given):
        unknown = set(given) - set(cls.OPTION_NAMES)
        if unknown:
            raise ValueError(f"unknown RDE loss settings {sorted(unknown)}; known: {list(cls.OPTION_NAMES)}")
        sam_init = given.get("sam_init") or "default"
        if sam_init not in SAM_INITS:
            raise ValueError(f"sam_init must be one of {SAM_INITS}, got {sam_init!r}")
        extra = cls.stage_defaults(stage).extra
        weights = {k: float(given[k]) if given.get(k) is not None else float(extra[k]) for k in WEIGHT_FLAGS}
        return {**weights, "sam_init": sam_init}

    def build_network(self, single_object, pretrained):
        if single_object:   # stage 0 trains STCN's single-object network (no SAM)
            return build_network(single_object=True, pretrained=pretrained)
        network = RDE(pretrained=pretrained)
        if self.options["sam_init"] == "zero":
            network.mem_compress.zero_init_non_local()
        return network

    def set_train_mode(self, network):
        return set_train_mode(network)

    def prepare_state_dict(self, state_dict, network):
        """Stage-0 / STCN weights: orthogonal 5th value-input channel; missing SAM weights keep the
        network's default initialisation (the released trainer loads non-strictly)."""
        if not network.single_object:
            state_dict = widen_value_input(state_dict, mode="orthogonal")
        own = network.state_dict()
        sam = {k: v for k, v in own.items() if k.startswith("mem_compress.") and k not in state_dict}
        return {**state_dict, **sam}

    def forward(self, network, batch, selector):
        rgb, labels, perturbed = batch["rgb"], batch["labels"], batch["perturbed_masks"]
        if network.single_object:
            rgb, labels, perturbed = rgb[:, :STAGE0_FRAMES], labels[:, :STAGE0_FRAMES], perturbed[:, :1]
        return rde_train_forward(network, rgb, labels, perturbed, selector)

    def losses(self, outputs, batch, iteration):
        used = len(outputs["logits"]) + 1
        labels, selector = batch["labels"][:, :used], batch["selector"]
        seg, frame_losses, p = segmentation_loss(outputs["logits"], labels, iteration, selector, self.schedule)
        mc = mask_consistency_loss(*outputs["mc"])
        result = {"seg_loss": seg, "mc_loss": mc, "p": p}
        total = seg + self.options["mc_weight"] * mc
        for (teacher, student), name in zip(outputs["ug"], ("ug_f2", "ug_f4")):
            result[f"{name}_loss"] = unbiased_guidance_loss(teacher, student)
            total = total + self.options[f"{name}_weight"] * result[f"{name}_loss"]
        result.update(self.frame_metrics(frame_losses, outputs["probs"], labels, selector))
        result["total_loss"] = total
        return result
