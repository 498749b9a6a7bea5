"""``train.py --model stcn``: the published STCN recipe."""
from dataset.curriculum import BL30K_CURRICULUM, MAIN_CURRICULUM
from model.checkpoint import widen_value_input
from model.losses import STCN_BOOTSTRAP, BootstrapSchedule, bootstrapped_ce_terms
from model.stcn import build_network, set_train_mode, train_forward
from training.recipes.base import StageDefaults, TrainingRecipe, register_recipe


@register_recipe
class STCNRecipe(TrainingRecipe):
    """STCN (NeurIPS 2021): 3-frame clips, bootstrapped CE, Adam lr 1e-5, weight decay 1e-7.

    Stage defaults (appendix F; batch sizes are per process, the paper used 2 GPUs):
    0 static images, single object: batch 8, 300k iterations, lr x0.1 at 150k;
    1 BL30K: batch 4, 500k, decay at 400k (the appendix text says 450k);
    2 main after BL30K: batch 4, 300k, decay at 250k;
    3 main without BL30K: batch 4, 150k, decay at 125k.
    """

    name = "stcn"
    STAGES = {
        0: StageDefaults("static", 8, 300_000, (150_000,), single_object=True),
        1: StageDefaults("bl30k", 4, 500_000, (400_000,), curriculum=BL30K_CURRICULUM),
        2: StageDefaults("main", 4, 300_000, (250_000,), curriculum=MAIN_CURRICULUM),
        3: StageDefaults("main", 4, 150_000, (125_000,), curriculum=MAIN_CURRICULUM),
    }
    bootstrap: BootstrapSchedule = STCN_BOOTSTRAP

    def build_network(self, single_object, pretrained):
        return build_network(single_object=single_object, pretrained=pretrained)

    def set_train_mode(self, network):
        return set_train_mode(network)

    def prepare_state_dict(self, state_dict, network):
        if not getattr(network, "single_object", False):
            # a stage-0 file: its value encoder gains the "other objects" channel, orthogonally
            # initialised as the published trainer does (evaluation pads zeros instead)
            state_dict = widen_value_input(state_dict, mode="orthogonal")
        return state_dict

    def forward(self, network, batch, selector):
        return train_forward(network, batch["rgb"], batch["labels"], selector)

    def losses(self, outputs, batch, iteration):
        labels, selector = batch["labels"], batch["selector"]
        frame_losses, p = bootstrapped_ce_terms(outputs["logits"], labels, iteration, selector, self.bootstrap)
        return {"total_loss": sum(frame_losses), "p": p,
                **self.frame_metrics(frame_losses, outputs["probs"], labels, selector)}
