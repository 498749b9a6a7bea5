"""Same as ``python scripts/make_synthetic_data.py --layout training ...`` (train.py's training data),
under the name that existing command lines use."""
import sys

from scripts import make_synthetic_data


def main(argv=None):
    return make_synthetic_data.main(["--layout", "training", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
