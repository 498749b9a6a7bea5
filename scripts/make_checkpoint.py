"""Write a checkpoint file of randomly initialised (seeded) weights, to try every command offline.

    python scripts/make_checkpoint.py --model stcn --output saves/random_stcn.pth
    python scripts/make_checkpoint.py --model rde --output saves/random_rde.pth
    python scripts/make_checkpoint.py --model swem --output saves/random_swem.pth

The file has the released format (a plain state dict) and loads with ``model.load_network`` and the
eval scripts (``--model saves/random_stcn.pth``, ``--memory rde`` / ``--memory swem`` for the others).
Its masks are meaningless: use it to check that commands, layouts and speed work, not for accuracy.
"""
import argparse
import sys

from evaluation.benchmark import build_network_for
from model import load_network
from training.checkpoint import atomic_save

FAMILIES = ("stcn", "rde", "swem")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=FAMILIES, default="stcn", help="network family (default stcn)")
    parser.add_argument("--output", required=True, help="checkpoint file to write")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights (default 0)")
    args = parser.parse_args(argv)
    network = build_network_for(args.model, args.seed)
    atomic_save(network.state_dict(), args.output)
    loaded = load_network(args.output)
    if type(loaded) is not type(network):
        sys.exit(f"error: {args.output} loads as {type(loaded).__name__}, not {type(network).__name__}")
    print(f"wrote {args.output}: random {args.model} weights (seed {args.seed}); "
          f"it loads as {type(loaded).__name__}")


if __name__ == "__main__":
    main()
