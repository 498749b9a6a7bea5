"""scripts/download_datasets.py against a local server holding small archives in each published source's
layout: everything lands where train.py and the eval scripts read it, a cut download resumes, reruns
fetch nothing, and the installed sets evaluate and train."""
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from local_http import LocalDrive
from PIL import Image

import eval_davis
import eval_youtube
from dataset.published_sources import SOURCES, content_folder
from dataset.static_dataset import static_sets
from dataset.synthetic import write_synthetic_davis, write_synthetic_youtube
from dataset.vos_dataset import bl30k_dataset
from dataset.youtube_resize import resized_size
from scripts import download_datasets
from util.download import DownloadError
from util.palette import read_label_png

pytestmark = pytest.mark.usefixtures("one_thread")


def zip_of(folder, prefix, convert=None):
    """A zip of ``folder``'s files under ``prefix``/ (``convert(relative path, bytes)`` may rewrite them)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                relative = path.relative_to(folder).as_posix()
                data = path.read_bytes() if convert is None else convert(relative, path.read_bytes())
                zf.writestr(f"{prefix}{relative}", data)
    return buffer.getvalue()


def tar_of(files):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tf:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def binary_mask(relative, data):
    """DAVIS 2016 annotations are 0/255 grayscale PNGs with one object."""
    if not relative.endswith(".png"):
        return data
    labels = np.array(Image.open(io.BytesIO(data)))
    out = io.BytesIO()
    Image.fromarray(np.where(labels > 0, 255, 0).astype(np.uint8), "L").save(out, format="PNG")
    return out.getvalue()


def drive_id(source, index=0):
    return SOURCES[source].archives[index].drive_id


@pytest.fixture(scope="module")
def published_archives(tmp_path_factory, training_data):
    """Drive id -> archive bytes, each laid out as the published archive is."""
    made = tmp_path_factory.mktemp("made")
    write_synthetic_davis(made / "davis", seed=5, num_train=1, num_val=1, num_test_dev=1, length=3, height=48,
                          width=64, max_objects=2)
    write_synthetic_youtube(made / "yv", seed=0, num_train=1, num_valid=1, length=11, height=48, width=64,
                            max_objects=2)
    trainval = made / "davis" / "trainval"
    val_video = (trainval / "ImageSets" / "2017" / "val.txt").read_text().split()[0]
    d16 = made / "d16"
    for kind in ("JPEGImages", "Annotations"):
        (d16 / kind / "480p").mkdir(parents=True)
        (trainval / kind / "480p" / val_video).rename(d16 / kind / "480p" / val_video)
    (d16 / "ImageSets" / "480p").mkdir(parents=True)
    (d16 / "ImageSets" / "480p" / "val.txt").write_text(
        "".join(f"/JPEGImages/480p/{val_video}/{t:05d}.jpg /Annotations/480p/{val_video}/{t:05d}.png\n"
                for t in range(3)))
    for kind in ("JPEGImages", "Annotations"):   # the 2017 set keeps its copy too
        (trainval / kind / "480p" / val_video).mkdir()
        for path in (d16 / kind / "480p" / val_video).iterdir():
            (trainval / kind / "480p" / val_video / path.name).write_bytes(path.read_bytes())
    scribbles = made / "scribbles"
    (scribbles / "Scribbles" / val_video).mkdir(parents=True)
    (scribbles / "Scribbles" / val_video / "001.json").write_text("{}")
    bl30k = sorted((training_data / "BL30K").rglob("*.*"))
    parts = [[(f"BL30K/{p.relative_to(training_data / 'BL30K').as_posix()}", p.read_bytes())
              for p in bl30k[i::6]] for i in range(6)]
    archives = {
        drive_id("static"): zip_of(training_data / "static", ""),
        drive_id("davis2016"): zip_of(d16, "DAVIS/", convert=binary_mask),
        drive_id("davis2017", 0): zip_of(trainval, "DAVIS/"),
        drive_id("davis2017", 1): zip_of(scribbles, "DAVIS/"),
        drive_id("davis2017-testdev"): zip_of(made / "davis" / "test-dev", "DAVIS/"),
        drive_id("youtube2019-train"): zip_of(made / "yv" / "train", "train/"),
        drive_id("youtube2019-valid"): zip_of(made / "yv" / "valid", "valid/"),
        drive_id("youtube2019-valid-all-frames"): zip_of(made / "yv" / "all_frames", ""),
        drive_id("youtube2018-valid"): zip_of(made / "yv" / "valid", "valid/"),
        drive_id("youtube2018-valid-all-frames"): zip_of(made / "yv" / "all_frames", ""),
    }
    archives.update({archive.drive_id: tar_of(part) for archive, part in zip(SOURCES["bl30k"].archives, parts)})
    return archives, made


@pytest.fixture(scope="module")
def installed(published_archives, tmp_path_factory):
    """Every source installed from the local server, with a cut download and a confirm page on the way."""
    archives, made = published_archives
    root = tmp_path_factory.mktemp("data")
    with LocalDrive() as drive:
        drive.files.update(archives)
        drive.confirm.add(drive_id("youtube2019-train"))
        drive.cut[drive_id("davis2017")] = 2000
        download_datasets.main(["--root", str(root), "--drive_url", drive.drive_url, "--bl30k", "--yes",
                                "--no_progress"])
        first = list(drive.requests)
        download_datasets.main(["--root", str(root), "--drive_url", drive.drive_url, "--bl30k", "--yes",
                                "--no_progress"])
        rerun = drive.requests[len(first):]
    return root, made, first, rerun


def test_every_source_lands_in_the_layout_the_scripts_read(installed, training_data):
    root, made, requests, rerun = installed
    assert sorted(p.name for p in root.iterdir()) == ["BL30K", "DAVIS", "YouTube", "YouTube2018", "static"]
    assert not [p for p in root.rglob(".*")], "staging folders, markers or the archive cache were left"
    assert {s.name for s, _ in static_sets(root / "static")} == {"BIG_small", "ECSSD", "FSS"}
    davis16 = root / "DAVIS" / "2016"
    val_video = (davis16 / "ImageSets" / "480p" / "val.txt").read_text().split("/")[3]
    assert (davis16 / "ImageSets" / "2016" / "val.txt").read_text() == f"{val_video}\n"
    trainval = root / "DAVIS" / "2017" / "trainval"
    assert (trainval / "Scribbles" / val_video / "001.json").is_file()   # both archives in one folder
    assert (trainval / "ImageSets" / "2017" / "train.txt").is_file()
    assert (root / "DAVIS" / "2017" / "test-dev" / "ImageSets" / "2017" / "test-dev.txt").is_file()
    for year in ("YouTube", "YouTube2018"):
        assert (root / year / "valid" / "meta.json").is_file()
        assert (root / year / "all_frames" / "valid_all_frames" / "JPEGImages").is_dir()
    bl30k_files = sorted(p.relative_to(root / "BL30K") for p in (root / "BL30K").rglob("*.*"))
    assert bl30k_files == sorted(p.relative_to(training_data / "BL30K") for p in
                                 (training_data / "BL30K").rglob("*.*"))   # 6 parts merged
    assert rerun == [], "a rerun must skip every complete source"


def test_cut_download_was_resumed_and_confirm_page_followed(installed):
    _, _, requests, _ = installed
    davis = [r for r in requests if r[1] == drive_id("davis2017")]
    assert [r[2] for r in davis] == [None, "bytes=2000-"]
    assert [r[0] for r in requests if r[1] == drive_id("youtube2019-train")] == ["/uc", "/download"]


def test_youtube_training_frames_are_resized_to_480p_offline(installed):
    root, made, _, _ = installed
    source, resized = made / "yv" / "train", root / "YouTube" / "train_480p"
    frames = sorted((source / "JPEGImages").rglob("*.jpg"))
    assert frames and len(frames) == len(list((resized / "JPEGImages").rglob("*.jpg")))
    for frame in frames:
        relative = frame.relative_to(source / "JPEGImages")
        with Image.open(resized / "JPEGImages" / relative) as image:
            assert image.size == resized_size(64, 48) == (640, 480)
    for mask in sorted((source / "Annotations").rglob("*.png")):
        before, palette = read_label_png(mask)
        after_path = resized / "Annotations" / mask.relative_to(source / "Annotations")
        with Image.open(after_path) as image:
            assert image.mode == "P"
        after, after_palette = read_label_png(after_path)
        # nearest neighbour: every output pixel is the label of its source pixel (x10 in both axes)
        np.testing.assert_array_equal(after, before.repeat(10, 0).repeat(10, 1))
        np.testing.assert_array_equal(after_palette, palette)


def test_installed_sets_evaluate_and_train(installed, tmp_path, monkeypatch):
    root, _, _, _ = installed
    from evaluation import runner
    from model import build_network
    from training.config import build_parser, resolve_config
    from training.trainer import Trainer, weights_path

    torch.manual_seed(0)
    checkpoint = tmp_path / "stcn.pth"
    network = build_network()
    torch.save(network.state_dict(), checkpoint)
    monkeypatch.setattr(runner, "load_model", lambda path, device: network.eval())   # loading is tested elsewhere
    eval_davis.main(["--model", str(checkpoint), "--davis_path", str(root / "DAVIS" / "2017"),
                     "--output", str(tmp_path / "d17")])
    assert (tmp_path / "d17" / "global_results-val.csv").is_file()
    eval_davis.main(["--model", str(checkpoint), "--davis_path", str(root / "DAVIS" / "2016"), "--year", "2016",
                     "--output", str(tmp_path / "d16")])
    assert len(list((tmp_path / "d16").rglob("*.png"))) == 3
    eval_youtube.main(["--model", str(checkpoint), "--yv_path", str(root / "YouTube"), "--short_side", "48",
                       "--output", str(tmp_path / "yv")])
    assert (tmp_path / "yv" / "valid_submission.zip").is_file()

    assert len(bl30k_dataset(root / "BL30K", size=32)) == 2
    config = resolve_config(build_parser().parse_args(
        ["--stage", "3", "--id", "dl", "--save_dir", str(tmp_path / "saves"), "--size", "32", "--batch_size", "1",
         "--iterations", "1", "--num_workers", "0", "--no_pretrained", "--no_progress", "--device", "cpu",
         "--davis_root", str(root / "DAVIS" / "2017"), "--yv_root", str(root / "YouTube")]))
    Trainer(config).run()
    assert weights_path(config, 1).is_file()


def test_archive_without_the_published_layout_is_reported(tmp_path):
    (tmp_path / "unpacked" / "something").mkdir(parents=True)
    with pytest.raises(DownloadError, match="no unpacked folder holds JPEGImages/480p"):
        content_folder(tmp_path / "unpacked", ("JPEGImages/480p",))


def test_bl30k_asks_before_it_downloads(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO())   # not a terminal: nobody to answer
    with pytest.raises(SystemExit, match="^error: --bl30k asks for confirmation; pass --yes"):
        download_datasets.main(["--root", str(tmp_path), "--only", "bl30k"])
    assert list(tmp_path.iterdir()) == []


def test_offline_install_stops_in_one_line_and_leaves_no_staging(tmp_path):
    import socket
    with socket.socket() as s:   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/uc"
    with pytest.raises(SystemExit, match="^error: davis2017: cannot reach 127.0.0.1:[0-9]+ .*no internet") as stop:
        download_datasets.main(["--root", str(tmp_path), "--only", "davis2017", "--drive_url", url, "--no_progress"])
    assert "\n" not in str(stop.value.code)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() or p.name.startswith(".")]
