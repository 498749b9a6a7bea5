"""Label PNG reading/writing and atomic publishing (util/palette.py)."""
import numpy as np
import pytest
from PIL import Image

from util.atomic_files import publish_directory
from util.palette import LabelImageError, as_palette_array, davis_palette, read_label_png, write_label_png


def test_davis_palette_first_colours():
    palette = davis_palette()
    assert palette.shape == (256, 3) and palette.dtype == np.uint8
    assert palette[:5].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]]
    assert palette[255].tolist() == [224, 224, 192]


def test_indexed_png_round_trip_keeps_ids_and_palette(tmp_path):
    labels = np.array([[0, 3, 3], [7, 0, 255]], np.uint8)
    own = davis_palette()[::-1].copy()
    write_label_png(tmp_path / "a.png", labels, own)
    with Image.open(tmp_path / "a.png") as image:
        assert image.mode == "P" and image.size == (3, 2)
    read, palette = read_label_png(tmp_path / "a.png")
    np.testing.assert_array_equal(read, labels)
    np.testing.assert_array_equal(palette, own)
    assert not list(tmp_path.glob(".*")), "no temporary file left behind"


def test_short_palette_is_completed_with_davis_colours():
    palette = as_palette_array([1, 2, 3, 4, 5, 6])
    assert palette[:2].tolist() == [[1, 2, 3], [4, 5, 6]]
    np.testing.assert_array_equal(palette[2:], davis_palette()[2:])


def test_grayscale_png_gives_its_values(tmp_path):
    Image.fromarray(np.array([[0, 2], [1, 0]], np.uint8)).save(tmp_path / "g.png")
    labels, palette = read_label_png(tmp_path / "g.png")
    assert labels.tolist() == [[0, 2], [1, 0]] and palette is None


def test_rgb_png_maps_onto_the_palette(tmp_path):
    rgb = davis_palette()[np.array([[0, 1], [2, 1]])]
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    labels, _ = read_label_png(tmp_path / "rgb.png")
    assert labels.tolist() == [[0, 1], [2, 1]]


def test_rgb_png_with_foreign_colours_is_rejected_naming_the_file(tmp_path):
    rgb = np.zeros((2, 2, 3), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "bad.png")
    with pytest.raises(LabelImageError, match=r"bad\.png.*\(1, 2, 3\)"):
        read_label_png(tmp_path / "bad.png")


def test_missing_and_broken_files_name_the_file(tmp_path):
    with pytest.raises(LabelImageError, match="nope.png: file not found"):
        read_label_png(tmp_path / "nope.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(LabelImageError, match="broken.png"):
        read_label_png(tmp_path / "broken.png")


def test_write_rejects_out_of_range_labels(tmp_path):
    with pytest.raises(ValueError, match="0..255"):
        write_label_png(tmp_path / "x.png", np.array([[256]]))
    assert not list(tmp_path.iterdir())


def test_publish_directory_appears_only_on_success(tmp_path):
    with pytest.raises(RuntimeError):
        with publish_directory(tmp_path / "video") as folder:
            (folder / "00000.png").write_bytes(b"x")
            raise RuntimeError("inference failed")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "video").mkdir()
    (tmp_path / "video" / "stale.png").write_bytes(b"old")
    with publish_directory(tmp_path / "video") as folder:
        (folder / "00000.png").write_bytes(b"x")
    assert sorted(p.name for p in (tmp_path / "video").iterdir()) == ["00000.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["video"]
