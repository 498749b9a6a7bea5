"""The published STCN datasets: where each archive lives and how it is installed into the layout
``train.py`` and the eval scripts read (README, "Train" and "Evaluate").

``install(source, root)`` downloads a source's archives (Google-Drive ids of the published download
scripts), unpacks each into a hidden staging folder beside its target, finds the unpacked content
(the folder holding the source's expected entries, however the archive wraps it), finishes it
(DAVIS 2016 image-set lists; the 480p YouTubeVOS resize) and renames it to the target in one step.
A target that exists is complete and skipped; an interrupted install resumes: a partial download
continues, an archive already unpacked is not fetched again.
"""
import shutil
from dataclasses import dataclass
from pathlib import Path

from dataset.youtube_resize import resize_youtube_train
from util.download import DRIVE_URL, DownloadError, drive_file_url, extract, fetch, remove_tree, replace_folder

BL30K_FREE_DISK = "about 1 TB"   # the published download script's warning


@dataclass(frozen=True)
class Archive:
    file_name: str
    drive_id: str


@dataclass(frozen=True)
class Source:
    name: str
    what: str
    target: str              # folder under --root that appears when the source is complete
    archives: tuple = ()
    content: tuple = ()      # glob patterns that the unpacked content folder matches
    finish: object = None    # fn(content folder) run before the rename
    resized_from: str = ""   # built from another source's target by the 480p YouTubeVOS resize


def _davis2016_image_sets(folder):
    """DAVIS 2016 lists its videos as frame paths in ImageSets/480p/<split>.txt; our DAVIS reader reads
    names from ImageSets/2016/<split>.txt (as in DAVIS 2017), so write those."""
    lists = folder / "ImageSets" / "2016"
    lists.mkdir(parents=True, exist_ok=True)
    for listing in sorted((folder / "ImageSets" / "480p").glob("*.txt")):
        names = []
        for line in listing.read_text().splitlines():
            if not line.strip():
                continue
            parts = Path(line.split()[0]).parts   # "/JPEGImages/480p/bear/00000.jpg ..." or "bear"
            name = parts[parts.index("480p") + 1] if "480p" in parts else parts[0]
            if name not in names:
                names.append(name)
        (lists / listing.name).write_text("\n".join(names) + "\n")


DAVIS_CONTENT = ("JPEGImages/480p", "Annotations/480p")
YOUTUBE_CONTENT = ("JPEGImages", "Annotations", "meta.json")
SOURCES = {s.name: s for s in (
    Source("static", "static image sets (DUTS, HRSOD, FSS-1000, ECSSD, BIG) for stage 0", "static",
           (Archive("static_data.zip", "1wUJq3HcLdN-z1t4CsUhjeZ9BVDb9YKLd"),), ("*/*.png",)),
    Source("davis2016", "DAVIS 2016 (480p and 1080p)", "DAVIS/2016",
           (Archive("DAVIS-data.zip", "198aRlh5CpAoFz0hfRgYbiNenn_K8DxWD"),),
           DAVIS_CONTENT + ("ImageSets/480p/val.txt",), _davis2016_image_sets),
    Source("davis2017", "DAVIS 2017 trainval 480p with the scribbles", "DAVIS/2017/trainval",
           (Archive("DAVIS-2017-trainval-480p.zip", "1kiaxrX_4GuW6NmiVuKGSGVoKGWjOdp6d"),
            Archive("DAVIS-2017-scribbles-trainval.zip", "1JzIQSu36h7dVM8q0VoE4oZJwBXvrZlkl")),
           DAVIS_CONTENT + ("ImageSets/2017/train.txt", "ImageSets/2017/val.txt")),
    Source("davis2017-testdev", "DAVIS 2017 test-dev 480p", "DAVIS/2017/test-dev",
           (Archive("DAVIS-2017-test-dev-480p.zip", "1fmkxU2v9cQwyb62Tj1xFDdh2p4kDsUzD"),),
           DAVIS_CONTENT + ("ImageSets/2017/test-dev.txt",)),
    Source("youtube2019-train", "YouTubeVOS 2019 train (a superset of 2018 train)", "YouTube/train",
           (Archive("YouTubeVOS-2019-train.zip", "13Eqw0gVK-AO5B-cqvJ203mZ2vzWck9s4"),), ("JPEGImages", "Annotations")),
    Source("youtube2019-train-480p", "YouTubeVOS 2019 train resized to 480p (what train.py reads)",
           "YouTube/train_480p", resized_from="YouTube/train"),
    Source("youtube2019-valid", "YouTubeVOS 2019 valid", "YouTube/valid",
           (Archive("YouTubeVOS-2019-valid.zip", "1o586Wjya-f2ohxYf9C1RlRH-gkrzGS8t"),), YOUTUBE_CONTENT),
    Source("youtube2019-valid-all-frames", "YouTubeVOS 2019 valid, every frame", "YouTube/all_frames/valid_all_frames",
           (Archive("YouTubeVOS-2019-valid-all-frames.zip", "1rWQzZcMskgpEQOZdJPJ7eTmLCBEIIpEN"),), ("JPEGImages",)),
    Source("youtube2018-valid", "YouTubeVOS 2018 valid", "YouTube2018/valid",
           (Archive("YouTubeVOS-2018-valid.zip", "1-QrceIl5sUNTKz7Iq0UsWC6NLZq7girr"),), YOUTUBE_CONTENT),
    Source("youtube2018-valid-all-frames", "YouTubeVOS 2018 valid, every frame",
           "YouTube2018/all_frames/valid_all_frames",
           (Archive("YouTubeVOS-2018-valid-all-frames.zip", "1yVoHM6zgdcL348cFpolFcEl4IC1gorbV"),), ("JPEGImages",)),
    Source("bl30k", f"BL30K (6 tar parts, needs {BL30K_FREE_DISK} of free disk; a ShapeNet derivative, "
                    f"non-commercial)", "BL30K",
           tuple(Archive(f"BL30K_{part}.tar", drive_id) for part, drive_id in zip("abcdef", (
               "1z9V5zxLOJLNt1Uj7RFqaP2FZWKzyXvVc", "11-IzgNwEAPxgagb67FSrBdzZR7OKAEdJ",
               "1ZfIv6GTo-OGpXpoKen1fUvDQ0A_WoQ-Q", "1G4eXgYS2kL7_Cc0x3N1g1x7Zl8D_aU_-",
               "1Y8q0V_oBwJIY27W_6-8CD1dRqV2gNTdE", "1nawBAazf_unMv46qGBHhWcQ4JXZ5883r"))),
           ("JPEGImages", "Annotations")),
)}


def staging_folder(target):
    return target.with_name("." + target.name + ".partial")


def content_folder(staging, patterns, max_depth=3):
    """The shallowest folder under ``staging`` that matches every glob pattern (unique at its depth)."""
    level = [staging]
    for _ in range(max_depth + 1):
        found = [d for d in level if all(next(d.glob(p), None) is not None for p in patterns)]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise DownloadError(f"{staging}: several unpacked folders hold {', '.join(patterns)}: "
                                f"{', '.join(str(f) for f in found)}")
        level = [c for d in level for c in sorted(d.iterdir()) if c.is_dir()]
    raise DownloadError(f"{staging}: no unpacked folder holds {', '.join(patterns)} (the archive's layout "
                        f"is not the published one)")


def install(source, root, drive_url=DRIVE_URL, cache=None, keep_archives=False, progress=True):
    """Install ``source`` under ``root``; returns "complete" (already there) or "installed"."""
    root = Path(root)
    target = root / source.target
    if target.is_dir():
        return "complete"
    if source.resized_from:
        origin = root / source.resized_from
        if not origin.is_dir():
            raise DownloadError(f"{origin}: missing; {source.name} is made from it (install it first)")
        resize_youtube_train(origin, target, progress=progress)
        return "installed"
    cache = Path(cache) if cache is not None else root / ".download_cache"
    staging = staging_folder(target)
    staging.mkdir(parents=True, exist_ok=True)
    try:
        for archive in source.archives:
            done = staging / f".unpacked-{archive.file_name}"
            if done.exists():
                continue
            path = cache / archive.file_name
            if not path.exists():
                fetch(drive_file_url(archive.drive_id, drive_url), path, progress=progress)
            extract(path, staging, progress=progress)
            done.touch()
            if not keep_archives:
                path.unlink()
    finally:   # a failure before anything arrived leaves no empty folders behind
        for folder in (staging, cache):
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
    content = content_folder(staging, source.content)
    if source.finish is not None:
        source.finish(content)
    for marker in staging.glob(".unpacked-*"):
        marker.unlink()
    replace_folder(content, target)
    remove_tree(staging)
    return "installed"


def free_disk_gib(root):
    root = Path(root)
    while not root.exists():
        root = root.parent
    return shutil.disk_usage(root).free / 2 ** 30
