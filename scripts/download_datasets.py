"""Download the published training and evaluation sets into the layouts train.py and the eval scripts read.

    python scripts/download_datasets.py                       # everything but BL30K, under ..
    python scripts/download_datasets.py --only davis2017 youtube2019-valid
    python scripts/download_datasets.py --bl30k               # + BL30K (asks first: ~1 TB of disk)

Targets under --root (default ``..``, as the published scripts and the README's commands):
static/, DAVIS/2016/, DAVIS/2017/{trainval,test-dev}/, YouTube/{train,train_480p,valid}/,
YouTube/all_frames/valid_all_frames/, YouTube2018/{valid,all_frames/valid_all_frames}/, BL30K/.
The YouTubeVOS training frames are resized to 480p offline as the published code does
(``scripts/resize_youtube.py``). Reruns skip what is complete and resume what is not. The data keep
their own licences (DUTS, HRSOD, FSS-1000, ECSSD, BIG; davischallenge.org; youtube-vos.org; BL30K via
the MiVOS project, non-commercial).
"""
import argparse
import sys
from pathlib import Path

from dataset.published_sources import BL30K_FREE_DISK, SOURCES, free_disk_gib, install
from util.download import DRIVE_URL, DownloadError

DEFAULT_SOURCES = [name for name in SOURCES if name != "bl30k"]


def confirm_bl30k(root, assume_yes):
    print(f"warning: BL30K is 6 tar parts that need {BL30K_FREE_DISK} of free disk; "
          f"{free_disk_gib(root):.0f} GiB are free under {root}. It is a ShapeNet derivative for "
          f"non-commercial use.", file=sys.stderr)
    if assume_yes:
        return
    if not sys.stdin.isatty():
        sys.exit("error: --bl30k asks for confirmation; pass --yes to download without asking")
    if input("Download BL30K? [y/N] ").strip().lower() not in ("y", "yes"):
        sys.exit("BL30K not downloaded")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default="..", help="folder to install the datasets under (default ..)")
    parser.add_argument("--only", nargs="+", choices=list(SOURCES), metavar="NAME",
                        help="install only these: " + ", ".join(SOURCES))
    parser.add_argument("--bl30k", action="store_true", help=f"also install BL30K ({BL30K_FREE_DISK} of disk)")
    parser.add_argument("--yes", action="store_true", help="do not ask before the BL30K download")
    parser.add_argument("--keep_archives", action="store_true",
                        help="keep the downloaded archives (in ROOT/.download_cache) after unpacking")
    parser.add_argument("--drive_url", default=DRIVE_URL, help=f"Google Drive's download endpoint (default "
                        f"{DRIVE_URL}; a mirror serving the same ids works too)")
    parser.add_argument("--no_progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    names = list(args.only or DEFAULT_SOURCES)
    if args.bl30k and "bl30k" not in names:
        names.append("bl30k")
    if "bl30k" in names:
        confirm_bl30k(args.root, args.yes)
    for name in names:
        source = SOURCES[name]
        try:
            status = install(source, args.root, args.drive_url, keep_archives=args.keep_archives,
                             progress=not args.no_progress)
        except (DownloadError, OSError) as error:
            sys.exit(f"error: {name}: {error}")
        print(f"{name}: {status} in {Path(args.root) / source.target} ({source.what})")


if __name__ == "__main__":
    main()
