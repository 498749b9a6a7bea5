"""Downloads (util.download, scripts/download_models.py) against a local server: atomic files, resume
after a cut connection (HTTP Range), Google Drive's confirm page, hashes, checkpoints that must load,
and one-line errors offline."""
import hashlib
import io
import socket

import numpy as np
import pytest
import torch
from local_http import LocalDrive

from conftest import synthetic_state_dict
from scripts import download_models
from util.download import DownloadError, confirm_url, drive_file_url, fetch, partial_path

PAYLOAD = np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes()


@pytest.fixture
def drive():
    with LocalDrive() as server:
        yield server


def test_cut_download_keeps_its_part_and_the_next_call_resumes_with_a_range(drive, tmp_path):
    drive.files["f"] = PAYLOAD
    drive.cut["f"] = 12_345
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match="run again to resume"):
        fetch(drive_file_url("f", drive.drive_url), dest, retries=0, progress=False)
    assert not dest.exists() and partial_path(dest).read_bytes() == PAYLOAD[:12_345]

    digest = fetch(drive_file_url("f", drive.drive_url), dest, sha256=hashlib.sha256(PAYLOAD).hexdigest(),
                   progress=False)
    assert dest.read_bytes() == PAYLOAD and digest == hashlib.sha256(PAYLOAD).hexdigest()
    assert [r[2] for r in drive.requests_for("f")] == [None, "bytes=12345-"]
    assert not partial_path(dest).exists()


def test_a_cut_within_one_call_is_resumed_by_its_retry(drive, tmp_path):
    drive.files["f"] = PAYLOAD
    drive.cut["f"] = 999
    fetch(drive_file_url("f", drive.drive_url), tmp_path / "data.bin", progress=False)
    assert (tmp_path / "data.bin").read_bytes() == PAYLOAD
    assert [r[2] for r in drive.requests_for("f")] == [None, "bytes=999-"]


def test_drive_confirm_page_is_followed_to_the_file(drive, tmp_path):
    drive.files["big"] = PAYLOAD
    drive.confirm.add("big")
    fetch(drive_file_url("big", drive.drive_url), tmp_path / "big.bin", progress=False)
    assert (tmp_path / "big.bin").read_bytes() == PAYLOAD
    assert [r[0] for r in drive.requests_for("big")] == ["/uc", "/download"]


def test_confirm_url_reads_old_style_links_and_refuses_other_pages():
    page = '<a id="uc-download-link" href="/uc?export=download&amp;confirm=AbC1&amp;id=xyz">Download</a>'
    assert confirm_url(page, "https://drive.google.com/uc?id=xyz") == \
        "https://drive.google.com/uc?export=download&confirm=AbC1&id=xyz"
    assert confirm_url("<html>Too many users have viewed or downloaded this file</html>", "https://x/uc") is None


def test_wrong_hash_or_rejected_file_leaves_nothing(drive, tmp_path):
    drive.files["f"] = PAYLOAD
    dest = tmp_path / "data.bin"
    with pytest.raises(DownloadError, match="SHA-256"):
        fetch(drive_file_url("f", drive.drive_url), dest, sha256="0" * 64, progress=False)

    def reject(path):
        raise DownloadError(f"{path}: not wanted")
    with pytest.raises(DownloadError, match="not wanted"):
        fetch(drive_file_url("f", drive.drive_url), dest, verify=reject, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_offline_and_missing_files_fail_in_one_line(drive, tmp_path):
    with socket.socket() as s:   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError, match=f"cannot reach 127.0.0.1:{port}.*no internet") as offline:
        fetch(f"http://127.0.0.1:{port}/uc?id=x", tmp_path / "x.bin", progress=False)
    assert "\n" not in str(offline.value)
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(drive_file_url("absent", drive.drive_url), tmp_path / "x.bin", progress=False)
    assert not list(tmp_path.iterdir())


@pytest.fixture(scope="module")
def checkpoint_bytes():
    buffer = io.BytesIO()
    torch.save(synthetic_state_dict("stcn", 0), buffer)
    return buffer.getvalue()


def test_download_models_fetches_both_published_drive_files_and_checks_they_load(drive, tmp_path, capsys,
                                                                                  checkpoint_bytes):
    weights = checkpoint_bytes
    for name in ("stcn", "s03"):
        drive.files[download_models.MODELS[name][1]] = weights
    drive.confirm.add(download_models.MODELS["stcn"][1])   # large files come behind the confirm page
    download_models.main(["--models", "stcn", "s03", "--dest", str(tmp_path), "--drive_url", drive.drive_url])
    assert (tmp_path / "stcn.pth").read_bytes() == weights and (tmp_path / "stcn_s03.pth").read_bytes() == weights
    out = capsys.readouterr().out
    assert f"wrote {tmp_path / 'stcn.pth'} (sha256 {hashlib.sha256(weights).hexdigest()}); it loads as STCN" in out

    requests = len(drive.requests)   # a rerun keeps the files and downloads nothing
    download_models.main(["--models", "stcn", "--dest", str(tmp_path), "--drive_url", drive.drive_url])
    assert len(drive.requests) == requests and "skipping" in capsys.readouterr().out


def test_a_download_that_is_no_checkpoint_is_refused_and_removed(drive, tmp_path):
    drive.files[download_models.MODELS["stcn"][1]] = b"PK\x03\x04 not a checkpoint"
    with pytest.raises(SystemExit, match="^error: .*not a network checkpoint"):
        download_models.main(["--dest", str(tmp_path), "--drive_url", drive.drive_url])
    assert list(tmp_path.iterdir()) == []


def test_release_assets_without_published_names_point_at_the_release_page(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        download_models.main(["--models", "s0", "--dest", str(tmp_path)])
    assert stop.value.code == 1
    assert download_models.RELEASE_PAGE in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_check_prints_loader_result_and_hash(tmp_path, capsys, checkpoint_bytes):
    path = tmp_path / "hand_downloaded.pth"
    path.write_bytes(checkpoint_bytes)
    download_models.main(["--check", str(path)])
    assert f"loads as STCN (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})" in capsys.readouterr().out
