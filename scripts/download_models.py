"""Download the published STCN weights into ./saves and check that they load.

    python scripts/download_models.py                    # saves/stcn.pth (s012: static -> BL30K -> main)
    python scripts/download_models.py --models stcn s03  # + saves/stcn_s03.pth (static -> main, no BL30K)
    python scripts/download_models.py --check saves/my_download.pth

stcn and s03 come from the published Google-Drive files. The s0 / s01 pretrained networks are assets
of the authors' GitHub release 1.0 whose file names are not published in their README: the script
prints the release page; download them by hand and check them with ``--check``. Every file is
written atomically, resumes after an interruption (rerun the command), and appears only after it
loads with ``model.load_network`` (no hashes are published). RDE-VOS weights are only behind links
in the RDE authors' README (download by hand, ``--check`` them); SWEM never released weights.
"""
import argparse
import sys
from pathlib import Path

from model import CheckpointError, load_network
from util.download import DRIVE_URL, DownloadError, drive_file_url, fetch, sha256_of

RELEASE_PAGE = "https://github.com/hkchengrex/STCN/releases/tag/1.0"
# name: (file name in --dest, Google-Drive id or None for a manual download, what it is)
MODELS = {
    "stcn": ("stcn.pth", "1mRrE0uCI2ktdWlUgapJI_KmgeIiF2eOm", "s012: static -> BL30K -> DAVIS+YouTubeVOS"),
    "s03": ("stcn_s03.pth", "1JllXPJZola0G-g1aUQfXe9nLMBioj-aH", "s03: static -> DAVIS+YouTubeVOS"),
    "s0": (None, None, "stage-0 (static images) pretrained network"),
    "s01": (None, None, "stage-0 + BL30K pretrained network"),
}
SHA256 = {}   # file name -> published hash; none are published today


def check_loads(path):
    """Raise CheckpointError unless ``path`` loads as a network; returns its architecture's class name."""
    return type(load_network(path)).__name__


def download_model(name, dest_dir, drive_url):
    file_name, drive_id, what = MODELS[name]
    if drive_id is None:
        print(f"{name} ({what}): its file name in the GitHub release is not published; download it by hand "
              f"from {RELEASE_PAGE} into {dest_dir}/ and check it with --check {dest_dir}/FILE")
        return False
    dest = Path(dest_dir) / file_name
    if dest.exists():
        print(f"{dest} exists, skipping the download; {dest} loads as {check_loads(dest)}")
        return True
    print(f"downloading {name} ({what}) into {dest}")
    url = drive_file_url(drive_id, drive_url)
    loaded_as = []

    def verify(part):
        try:
            loaded_as.append(check_loads(part))
        except CheckpointError as error:
            raise DownloadError(f"{url}: the download is not a network checkpoint ({error})") from None
    digest = fetch(url, dest, sha256=SHA256.get(file_name), verify=verify)
    print(f"wrote {dest} (sha256 {digest}); it loads as {loaded_as[0]}")
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["stcn"], choices=list(MODELS),
                        help="which weights (default: stcn, the published README's model)")
    parser.add_argument("--dest", default="saves", help="folder to write the weights into (default saves)")
    parser.add_argument("--check", nargs="+", metavar="FILE", help="download nothing: check that these files "
                        "load as networks and print their SHA-256")
    parser.add_argument("--drive_url", default=DRIVE_URL, help=f"Google Drive's download endpoint (default "
                        f"{DRIVE_URL}; a mirror serving the same ids works too)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            for path in args.check:
                print(f"{path} loads as {check_loads(path)} (sha256 {sha256_of(path)})")
            return
        complete = [download_model(name, args.dest, args.drive_url) for name in args.models]
    except (DownloadError, CheckpointError, OSError) as error:
        sys.exit(f"error: {error}")
    if not all(complete):
        sys.exit(1)


if __name__ == "__main__":
    main()
