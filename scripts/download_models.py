"""Download released weights into ./saves and check that they load.

    python scripts/download_models.py                 # STCN (stcn.pth)
    python scripts/download_models.py --models stcn --dest saves

RDE-VOS weights (model_s012_final.pth, model_s012_final_yv.pth) are only published behind the
authors' Google-Drive links (see their README); download them by hand into ``saves/`` and load them
with ``model.load_network``. SWEM never released weights.
"""
import argparse
import hashlib
import os
import sys
import tempfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model import CheckpointError, load_network  # noqa: E402

RELEASES = {
    # name: (file name, url) — the STCN authors' GitHub release asset
    "stcn": ("stcn.pth", "https://github.com/hkchengrex/STCN/releases/download/1.0/stcn.pth"),
}


def download(url, dest):
    """Stream ``url`` into ``dest`` atomically (a partial download never appears under its name)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    sha = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
            while chunk := response.read(1 << 20):
                sha.update(chunk)
                out.write(chunk)
        os.replace(tmp, dest)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return sha.hexdigest()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["stcn"], choices=sorted(RELEASES))
    parser.add_argument("--dest", default="saves", help="folder to write the weights into")
    args = parser.parse_args(argv)
    for name in args.models:
        file_name, url = RELEASES[name]
        dest = Path(args.dest) / file_name
        if dest.exists():
            print(f"{dest} exists, skipping download")
        else:
            print(f"downloading {name} from {url}")
            try:
                digest = download(url, dest)
            except OSError as exc:
                sys.exit(f"could not download {url} ({exc}). On an offline machine, copy {file_name} "
                         f"into {args.dest}/ by hand.")
            print(f"wrote {dest} (sha256 {digest})")
        try:
            load_network(dest)
        except CheckpointError as exc:
            sys.exit(f"{dest} was downloaded but does not load: {exc}")
        print(f"{dest} loads as a {name} network")


if __name__ == "__main__":
    main()
