"""``train.py --model rde``: the RDE-VOS training recipe for the shared trainer.

Stage defaults (RDE.md section 7, the released README commands; batch sizes per process):
| stage | data | batch | iterations | lr x0.1 at | lr | L_MC | L_UG f2/f4 | BCE warm-up |
| 0 | static, single object, no SAM | 16 (x4 GPUs) | 75k | 37.5k | 2e-5 | 10 | - | 5k-17.5k |
| 1 | BL30K | 4 (x2) | 500k | 400k | 1e-5 | 10 | 10/10 | 20k-70k |
| 2 | DAVIS x5 + YouTubeVOS after BL30K | 8 (x2) | 75k | 62.5k | 2e-5 | 5 | 5/5 | 5k-17.5k |
| 3 | DAVIS x5 + YouTubeVOS, no BL30K | 4 (x2) | 150k | 125k | 2e-5 | 10 | 10/10 | 20k-70k |
The loss weights are flags (--mc_weight, --ug_f2_weight, --ug_f4_weight); the paper uses 10 for all.
Clips have 5 frames (stage 0: 3, its network is STCN's single-object one, no SAM); video clips pick
their frames by RDE's forward walk with 50% time reversal (``dataset/rde_frames.py``).
A SAM not found in --load_network keeps the new network's init: PyTorch's default (released
trainer, --sam_init default) or non-local blocks starting as the identity (--sam_init zero), which
avoids the recurrent RDE exploding when the encoders are not ImageNet-initialised.
"""
import numpy as np
import torch
import torch.nn as nn

from dataset.curriculum import BL30K_CURRICULUM, MAIN_CURRICULUM
from dataset.mask_perturbation import perturb_objects
from dataset.rde_frames import sample_rde_frame_indices
from model.losses import BootstrapSchedule, per_object_iou
from model.rde_losses import MC_WEIGHT, UG_WEIGHT, mask_consistency_loss, segmentation_loss, unbiased_guidance_loss
from model.rde_training import rde_train_forward

from .train_recipes import RECIPES, StageDefaults, TrainingRecipe

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


class _RDEStep(nn.Module):
    """Perturbs frame 0's masks and runs ``rde_train_forward`` through ``forward`` (DDP sees the step)."""

    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, rgb, labels, selector):
        single = self.network.single_object
        if single:
            rgb, labels = rgb[:, :STAGE0_FRAMES], labels[:, :STAGE0_FRAMES]
        objects = 1 if single else selector.shape[1]
        perturbed = perturbed_first_masks(labels[:, 0], objects).to(rgb.device)
        return rde_train_forward(self.network, rgb, labels, perturbed, None if single else selector[:, :objects])


def perturbed_first_masks(first_labels, objects):
    """(B, H, W) label maps -> (B, objects, H, W) float perturbed masks; seeds from torch's RNG, so
    runs are reproducible and resumable like the rest of the step."""
    seeds = torch.randint(2 ** 62, (first_labels.shape[0],)).tolist()
    labels = first_labels.cpu().numpy()
    masks = [perturb_objects(labels[b], objects, np.random.default_rng(seed))[0] for b, seed in enumerate(seeds)]
    return torch.from_numpy(np.stack(masks)).float()


class RDERecipe(TrainingRecipe):
    """RDE-VOS (CVPR 2022): SAM + STM patterns on 5-frame clips, L_seg + L_MC + L_UG."""

    name = "rde"
    num_frames = 5
    frame_sampler = staticmethod(sample_rde_frame_indices)

    def __init__(self):
        self.settings = None

    @staticmethod
    def add_arguments(parser):
        g = parser.add_argument_group("RDE losses (--model rde; unset = the stage's released value)")
        g.add_argument("--mc_weight", type=float, help="mask-consistency weight (paper 10; stage-2 command 5)")
        g.add_argument("--ug_f2_weight", type=float, help="unbiased guidance at frame 2 (paper 10; stage 2: 5)")
        g.add_argument("--ug_f4_weight", type=float, help="unbiased guidance at frame 4 (paper 10; stage 2: 5)")
        g.add_argument("--sam_init", choices=SAM_INITS, default="default",
                       help="init of a SAM not loaded from --load_network: PyTorch default (released) or "
                            "zero = non-local blocks start as the identity (stable from random encoders)")

    def configure(self, stage, sam_init="default", **weights):
        """Loss weights and warm-up of ``stage``; ``weights`` (None = stage default) override them."""
        if sam_init not in SAM_INITS:
            raise ValueError(f"sam_init must be one of {SAM_INITS}, got {sam_init!r}")
        extra = dict(self.stage_defaults(stage).extra)
        extra.update({k: float(v) for k, v in weights.items() if v is not None})
        unknown = set(extra) - set(WEIGHT_FLAGS) - {"warm"}
        if unknown:
            raise ValueError(f"unknown RDE loss settings {sorted(unknown)}; known: {WEIGHT_FLAGS}")
        start, end = extra.pop("warm")
        self.settings = {**extra, "schedule": BootstrapSchedule(start_warm=start, end_warm=end), "stage": stage,
                         "sam_init": sam_init}
        return self

    def configure_from_args(self, args):
        return self.configure(args.stage, sam_init=getattr(args, "sam_init", "default"),
                              **{k: getattr(args, k, None) for k in WEIGHT_FLAGS})

    def family_options(self):
        if self.settings is None:
            raise RuntimeError("configure the RDE recipe (configure or configure_from_args) first")
        return {**{k: self.settings[k] for k in WEIGHT_FLAGS}, "sam_init": self.settings["sam_init"]}

    def configure_options(self, stage, options):
        return self.configure(stage, **options)

    def stage_defaults(self, stage):
        if stage not in RDE_STAGES:
            raise ValueError(f"RDE has stages 0-3, not {stage}")
        return RDE_STAGES[stage]

    def build_network(self, single_object, pretrained):
        from model import RDE, build_network
        if single_object:   # stage 0 trains STCN's single-object network (no SAM)
            return build_network(single_object=True, pretrained=pretrained)
        network = RDE(pretrained=pretrained)
        if (self.settings or {}).get("sam_init") == "zero":
            network.mem_compress.zero_init_non_local()
        return network

    def set_train_mode(self, network):
        from model import set_train_mode
        return set_train_mode(network)

    def prepare_state_dict(self, state_dict, network):
        """Stage-0 / STCN weights: orthogonal 5th value-input channel; missing SAM weights keep the
        network's default initialisation (the released trainer loads non-strictly)."""
        from model.checkpoint import widen_value_input
        if not network.single_object:
            state_dict = widen_value_input(state_dict, mode="orthogonal")
        own = network.state_dict()
        sam = {k: v for k, v in own.items() if k.startswith("mem_compress.") and k not in state_dict}
        return {**state_dict, **sam}

    def make_optimizer(self, parameters, config):
        if self.settings is None or self.settings["stage"] != config.stage:
            # programmatic use without the trainer: the config's options, else the stage's defaults
            self.configure_options(config.stage, getattr(config, "family_options", None) or {})
        return super().make_optimizer(parameters, config)

    def training_module(self, network):
        return _RDEStep(network)

    def losses(self, outputs, batch, iteration):
        s = self.settings
        used = len(outputs["logits"]) + 1
        labels, selector = batch["labels"][:, :used], batch["selector"]
        seg, frame_losses, p = segmentation_loss(outputs["logits"], labels, iteration, selector, s["schedule"])
        mc = mask_consistency_loss(*outputs["mc"])
        result = {"seg_loss": seg, "mc_loss": mc, "p": p}
        total = seg + s["mc_weight"] * mc
        for (teacher, student), name in zip(outputs["ug"], ("ug_f2", "ug_f4")):
            result[f"{name}_loss"] = unbiased_guidance_loss(teacher, student)
            total = total + s[f"{name}_weight"] * result[f"{name}_loss"]
        for f, loss in enumerate(frame_losses, start=1):
            result[f"loss_{f}"] = loss
        ious = torch.stack([per_object_iou(probs.float(), labels[:, f + 1], selector)
                            for f, probs in enumerate(outputs["probs"])])
        result["iou"] = torch.nanmean(ious)
        result["total_loss"] = total
        return result


RECIPES["rde"] = RDERecipe
