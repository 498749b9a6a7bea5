"""The weight download script writes atomically, checks the file loads, and fails clearly."""
import pytest
import torch

from conftest import synthetic_state_dict
from scripts import download_models


def test_download_writes_and_verifies(tmp_path, monkeypatch, capsys):
    source = tmp_path / "released.pth"
    torch.save(synthetic_state_dict("stcn", 0), source)
    monkeypatch.setitem(download_models.RELEASES, "stcn", ("stcn.pth", source.as_uri()))
    download_models.main(["--dest", str(tmp_path / "saves")])
    assert (tmp_path / "saves" / "stcn.pth").read_bytes() == source.read_bytes()
    assert "loads as a stcn network" in capsys.readouterr().out


def test_unreachable_url_fails_without_leaving_a_partial_file(tmp_path, monkeypatch):
    missing = (tmp_path / "nowhere.pth").as_uri()
    monkeypatch.setitem(download_models.RELEASES, "stcn", ("stcn.pth", missing))
    with pytest.raises(SystemExit, match="could not download"):
        download_models.main(["--dest", str(tmp_path / "saves")])
    assert list((tmp_path / "saves").iterdir()) == []


def test_downloaded_non_checkpoint_is_reported(tmp_path, monkeypatch):
    source = tmp_path / "page.html"
    source.write_text("<html>quota exceeded</html>")
    monkeypatch.setitem(download_models.RELEASES, "stcn", ("stcn.pth", source.as_uri()))
    with pytest.raises(SystemExit, match="does not load"):
        download_models.main(["--dest", str(tmp_path / "saves")])
