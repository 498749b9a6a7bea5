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
from training.config import build_parser, resolve_config
from training.trainer import Trainer, TrainingSetupError
from util.interrupts import Interrupted, raise_on_signals


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = resolve_config(args)
    except ValueError as error:
        parser.error(str(error))
    try:
        with raise_on_signals():  # SIGTERM too removes the temporary file of a checkpoint being written
            Trainer(config).run()
    except (DatasetFolderError, CheckpointError, TrainingSetupError, FileExistsError) as error:
        # a problem with the inputs, not a bug: one line, no traceback
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except Interrupted as stop:
        print(f"error: {stop}; --resume continues from the last training state", file=sys.stderr)
        sys.exit(stop.exit_status)


if __name__ == "__main__":
    main(sys.argv[1:])
