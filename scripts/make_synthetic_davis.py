"""Same as ``python scripts/make_synthetic_data.py --layout davis ...`` (a DAVIS-2017-layout set),
under the name that existing command lines use."""
import sys

from scripts import make_synthetic_data


def main(argv=None):
    return make_synthetic_data.main(["--layout", "davis", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    main()
