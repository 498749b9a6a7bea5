#!/usr/bin/env python
"""Train STCN (and relatives) stage by stage.

    torchrun --nproc_per_node=2 train.py --stage 0 --id s0 --static_root ../static
    torchrun --nproc_per_node=2 train.py --stage 3 --id s03 --load_network saves/s0/s0_300000.pth \\
        --davis_root ../DAVIS/2017 --yv_root ../YouTube

--batch_size is per process. Run `python train.py --help` for every flag and its paper value.
"""
import sys

from dataset.folders import DatasetFolderError
from model.checkpoint import CheckpointError
from util.interrupts import Interrupted, raise_on_signals
from util.train_config import build_parser, resolve_config
from util.train_recipes import all_recipes, get_recipe
from util.trainer import Trainer, TrainingSetupError


def main(argv=None):
    parser = build_parser()
    for family in all_recipes().values():   # family-specific flags (e.g. RDE loss weights)
        if hasattr(family, "add_arguments"):
            family.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = resolve_config(args)
    except ValueError as error:
        parser.error(str(error))
    recipe = get_recipe(config.model)
    if hasattr(recipe, "configure_from_args"):
        recipe.configure_from_args(args)
    try:
        with raise_on_signals():  # SIGTERM too removes the temporary file of a checkpoint being written
            Trainer(config, recipe=recipe).run()
    except (DatasetFolderError, CheckpointError, TrainingSetupError, FileExistsError) as error:
        # a problem with the inputs, not a bug: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as stop:
        print(f"error: {stop}; --resume continues from the last training state", file=sys.stderr)
        sys.exit(stop.exit_status)


if __name__ == "__main__":
    main(sys.argv[1:])
