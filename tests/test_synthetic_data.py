"""Specification of the synthetic video generator, the synthetic benchmark and training layouts, the
static images, and scripts/make_synthetic_data.py (with the old per-layout script names)."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from dataset.static_dataset import find_image_mask_pairs, static_sets
from dataset.synthetic import SyntheticVideo
from dataset.synthetic_static import write_static_images
from scripts import make_synthetic_data


def test_frames_have_the_promised_types_and_sizes():
    video = SyntheticVideo(seed=0, height=24, width=40, num_objects=2, length=3)
    assert len(video) == 3
    rgb, labels = video.frame(0)
    assert rgb.shape == (24, 40, 3) and rgb.dtype == np.uint8
    assert labels.shape == (24, 40) and labels.dtype == np.uint8


def test_same_seed_same_video_and_random_access_equals_iteration():
    a = SyntheticVideo(seed=5, height=32, width=48, num_objects=3, length=6)
    b = SyntheticVideo(seed=5, height=32, width=48, num_objects=3, length=6)
    for t, (rgb, labels) in enumerate(a):
        rgb_b, labels_b = b.frame(t)
        np.testing.assert_array_equal(rgb, rgb_b)
        np.testing.assert_array_equal(labels, labels_b)
    np.testing.assert_array_equal(next(iter(a.frames())), a.frame(0)[0])
    other = SyntheticVideo(seed=6, height=32, width=48, num_objects=3, length=6)
    assert not np.array_equal(other.frame(0)[0], a.frame(0)[0])


def test_every_object_is_visible_in_the_first_frame_by_default():
    for seed in range(5):
        video = SyntheticVideo(seed=seed, height=32, width=48, num_objects=3, length=2)
        assert set(np.unique(video.labels(0))) == {0, 1, 2, 3}


def test_objects_move_and_textures_are_not_flat():
    video = SyntheticVideo(seed=1, height=32, width=48, num_objects=2, length=4)
    assert not np.array_equal(video.labels(0), video.labels(3))
    rgb, labels = video.frame(0)
    assert rgb[labels == 1].std() > 5  # striped texture, not a flat colour


def test_late_object_with_non_consecutive_ids():
    video = SyntheticVideo(seed=2, height=32, width=48, num_objects=2, length=12,
                           object_ids=(3, 7), first_frames=(0, 10))
    assert video.first_frames == {3: 0, 7: 10}
    assert 7 not in video.labels(9) and not video.amodal_mask(7, 9).any()
    assert set(np.unique(video.labels(10))) == {0, 3, 7}


def test_an_object_leaves_the_frame_and_comes_back():
    video = SyntheticVideo(seed=0, height=24, width=32, num_objects=2, length=120, noise=0)
    present = np.array([[(video.labels(t) == k).any() for k in (1, 2)] for t in range(120)])
    assert any(
        not column[t] and column[t + 1:].any()  # visible at 0, gone at t, back later
        for column in present.T for t in range(120)
    )


def test_edge_crossers_choose_how_many_objects_leave_and_return():
    def leaves_and_returns(video, label):
        seen = [(video.labels(t) == label).any() for t in range(len(video))]
        return any(not seen[t] and any(seen[t + 1:]) for t in range(len(seen)))

    every = SyntheticVideo(seed=4, height=32, width=48, num_objects=3, length=200, noise=0, edge_crossers=3)
    assert all(leaves_and_returns(every, k) for k in every.object_ids)
    none = SyntheticVideo(seed=4, height=32, width=48, num_objects=3, length=200, noise=0, edge_crossers=0)
    assert not any(leaves_and_returns(none, k) for k in none.object_ids)
    # the default keeps the original videos: the last object alone crosses the edge
    default = SyntheticVideo(seed=4, height=32, width=48, num_objects=3, length=8)
    explicit = SyntheticVideo(seed=4, height=32, width=48, num_objects=3, length=8, edge_crossers=1)
    for t in range(8):
        np.testing.assert_array_equal(default.frame(t)[0], explicit.frame(t)[0])


def test_deform_bends_outlines_beyond_rigid_motion():
    rigid = SyntheticVideo(seed=7, height=48, width=48, num_objects=1, length=30, noise=0, edge_crossers=0)
    bent = SyntheticVideo(seed=7, height=48, width=48, num_objects=1, length=30, noise=0, edge_crossers=0,
                          deform=0.3)
    assert set(np.unique(bent.labels(0))) == {0, 1}
    # same motion (the wobble has its own generator) but different outlines
    differing = [(rigid.labels(t) != bent.labels(t)).mean() for t in range(30)]
    assert min(differing) > 0.005
    with pytest.raises(ValueError, match="deform"):
        SyntheticVideo(seed=0, height=16, width=16, num_objects=1, length=2, deform=0.7)


def test_objects_occlude_each_other():
    video = SyntheticVideo(seed=3, height=32, width=48, num_objects=3, length=40, noise=0)
    occluded = any(
        (video.labels(t) == k).sum() < video.amodal_mask(k, t).sum()
        for t in range(40) for k in video.object_ids)
    assert occluded


def test_generation_is_lazy_so_long_videos_cost_nothing():
    video = SyntheticVideo(seed=0, height=16, width=16, num_objects=1, length=10**7)
    rgb, labels = video.frame(10**7 - 1)
    assert rgb.shape == (16, 16, 3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_objects=0), "num_objects"),
    (dict(object_ids=(1, 1)), "distinct"),
    (dict(object_ids=(1, 255)), "1..254"),
    (dict(first_frames=(0, 9)), "first_frames"),
    (dict(length=0), "length"),
    (dict(edge_crossers=3), "edge_crossers"),
])
def test_bad_arguments_are_rejected_clearly(kwargs, message):
    args = dict(seed=0, height=16, width=16, num_objects=2, length=5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        SyntheticVideo(**args)


def test_frame_index_out_of_range():
    with pytest.raises(IndexError):
        SyntheticVideo(seed=0, height=16, width=16, num_objects=1, length=2).frame(2)


# ---------------------------------------------------------------- benchmark layouts and their readers
import json  # noqa: E402

from PIL import Image  # noqa: E402

from dataset.benchmark_readers import BenchmarkLayoutError, DavisReader, YouTubeReader  # noqa: E402
from dataset.synthetic import write_synthetic_davis, write_synthetic_youtube  # noqa: E402
from util.palette import davis_palette  # noqa: E402


@pytest.fixture(scope="module")
def davis_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("davis")
    write_synthetic_davis(root, seed=1, num_train=1, num_val=2, num_test_dev=1, length=4, height=24,
                          width=40, max_objects=3)
    return root


@pytest.fixture(scope="module")
def youtube_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("youtube")
    write_synthetic_youtube(root, seed=1, num_train=1, num_valid=2, length=11, height=24, width=40)
    return root


def test_davis_layout_is_the_published_one(davis_root):
    trainval = davis_root / "trainval"
    for year in ("2016", "2017"):
        assert (trainval / "ImageSets" / year / "val.txt").read_text().split() == ["val-shapes-00", "val-shapes-01"]
        assert (trainval / "ImageSets" / year / "train.txt").read_text().split() == ["train-shapes-00"]
    video = trainval / "JPEGImages" / "480p" / "val-shapes-00"
    assert sorted(p.name for p in video.iterdir()) == [f"0000{t}.jpg" for t in range(4)]
    annotation = trainval / "Annotations" / "480p" / "val-shapes-00" / "00000.png"
    with Image.open(annotation) as image:
        assert image.mode == "P" and image.size == (40, 24)
        assert np.array_equal(np.array(image.getpalette()).reshape(-1, 3), davis_palette())
    test_dev = davis_root / "test-dev"
    assert (test_dev / "ImageSets" / "2017" / "test-dev.txt").read_text().split() == ["testdev-shapes-00"]
    assert [p.name for p in (test_dev / "Annotations" / "480p" / "testdev-shapes-00").iterdir()] == ["00000.png"]
    assert len(list((test_dev / "JPEGImages" / "480p" / "testdev-shapes-00").iterdir())) == 4


def test_davis_layout_is_seeded(davis_root, tmp_path):
    write_synthetic_davis(tmp_path, seed=1, num_train=1, num_val=2, num_test_dev=1, length=4, height=24,
                          width=40, max_objects=3)
    path = "trainval/Annotations/480p/val-shapes-01/00003.png"
    assert (tmp_path / path).read_bytes() == (davis_root / path).read_bytes()
    with pytest.raises(FileExistsError, match="overwrite"):
        write_synthetic_davis(tmp_path, length=4, height=24, width=40)


def test_davis_reader_streams_frames_and_annotations(davis_root):
    reader = DavisReader(davis_root, split="val")
    assert reader.sequences == ["val-shapes-00", "val-shapes-01"]
    video = reader.video("val-shapes-00")
    assert len(video) == 4 and video.size == (24, 40) and reader.has_ground_truth(video)
    frames = video.frames()
    first = next(frames)
    assert first.shape == (24, 40, 3) and first.dtype == np.uint8
    labels = video.annotation("00000")
    assert labels.dtype == np.uint8 and labels.max() >= 1
    test_dev = DavisReader(davis_root, split="testdev")
    assert not test_dev.has_ground_truth(test_dev.video("testdev-shapes-00"))


def test_davis_reader_errors_name_the_missing_path(davis_root):
    with pytest.raises(BenchmarkLayoutError, match=r"ImageSets/2017/val\.txt"):
        DavisReader(davis_root / "nowhere", split="val")
    with pytest.raises(BenchmarkLayoutError, match=r"JPEGImages/480p/ghost: video ghost is listed"):
        DavisReader(davis_root, split="val").video("ghost")


def test_youtube_layout_is_the_published_one(youtube_root):
    sparse = ["00000", "00005", "00010"]
    meta = json.loads((youtube_root / "valid" / "meta.json").read_text())["videos"]
    assert sorted(meta) == ["valid000shapes", "valid001shapes"]
    for name, video in meta.items():
        assert sorted(p.stem for p in (youtube_root / "valid" / "JPEGImages" / name).iterdir()) == sparse
        all_frames = youtube_root / "all_frames" / "valid_all_frames" / "JPEGImages" / name
        assert len(list(all_frames.iterdir())) == 11
        assert sorted(p.stem for p in (youtube_root / "valid_gt" / "Annotations" / name).iterdir()) == sparse
        ids = sorted(int(i) for i in video["objects"])
        assert all(b - a > 1 for a, b in zip(ids, ids[1:])), "ids are not consecutive"
        starts = {int(i): o["frames"][0] for i, o in video["objects"].items()}
        given = sorted(p.stem for p in (youtube_root / "valid" / "Annotations" / name).iterdir())
        assert given == sorted(set(starts.values()))  # annotations only where objects are first given
        for frame in given:
            with Image.open(youtube_root / "valid" / "Annotations" / name / f"{frame}.png") as image:
                held = set(np.unique(np.array(image))) - {0}
            assert held == {i for i, s in starts.items() if s == frame}
    first_video = meta["valid000shapes"]["objects"]
    assert max(o["frames"][0] for o in first_video.values()) == "00005", "an object enters late"
    train = json.loads((youtube_root / "train" / "meta.json").read_text())["videos"]
    assert {o["category"] for v in train.values() for o in v["objects"].values()} <= {"ellipse", "rectangle"}
    assert sorted(p.stem for p in (youtube_root / "train" / "Annotations" / "train000shapes").iterdir()) == sparse


def test_youtube_reader_gives_masks_where_objects_first_appear(youtube_root):
    reader = YouTubeReader(youtube_root, split="valid")
    assert reader.all_frames_root is not None
    video = reader.video("valid000shapes")
    assert len(video) == 11 and video.required_names == {"00000", "00005", "00010"}
    given = reader.given_masks(video)
    assert sorted(given) == [0, 5]
    late = set(np.unique(given[5])) - {0}
    assert late and not late & set(np.unique(given[0]))
    sparse_only = YouTubeReader(youtube_root, split="valid", use_all_frames=False).video("valid000shapes")
    assert sparse_only.frame_names == ["00000", "00005", "00010"]


def test_youtube_reader_rejects_meta_naming_absent_frames(youtube_root, tmp_path):
    import shutil
    root = tmp_path / "yv"
    shutil.copytree(youtube_root, root)
    meta_path = root / "valid" / "meta.json"
    meta = json.loads(meta_path.read_text())
    first_object = next(iter(meta["videos"]["valid001shapes"]["objects"].values()))
    first_object["frames"].append("00095")
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(BenchmarkLayoutError, match=r"meta\.json: video valid001shapes object \d+ names frame 00095"):
        YouTubeReader(root, split="valid").video("valid001shapes")


# ---------------------------------------------------------------- scripts/make_synthetic_data.py and static images
def test_script_writes_the_library_sets(davis_root, youtube_root, tmp_path):
    make_synthetic_data.main(["--layout", "davis", "--output", str(tmp_path / "d"), "--seed", "1", "--train", "1",
                              "--val", "2", "--test_dev", "1", "--frames", "4", "--size", "24", "40"])
    path = "trainval/Annotations/480p/val-shapes-01/00003.png"
    assert (tmp_path / "d" / path).read_bytes() == (davis_root / path).read_bytes()
    make_synthetic_data.main(["--layout", "youtube", "--output", str(tmp_path / "y"), "--seed", "1", "--train", "1",
                              "--valid", "2", "--frames", "11", "--height", "24", "--width", "40"])
    path = "valid_gt/Annotations/valid001shapes/00010.png"
    assert (tmp_path / "y" / path).read_bytes() == (youtube_root / path).read_bytes()
    with pytest.raises(SystemExit):
        make_synthetic_data.main(["--layout", "davis", "--output", str(tmp_path / "x"), "--size", "24", "40",
                                  "--height", "24"])


def test_training_layout_writes_the_chosen_parts(tmp_path):
    make_synthetic_data.main(["--layout", "training", "--output", str(tmp_path), "--size", "24", "32",
                              "--images", "1", "--videos", "1", "--frames", "3", "--parts", "static", "davis"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DAVIS", "static"]
    assert {p.name: repeat for p, repeat in static_sets(tmp_path / "static")} == {"BIG_small": 5, "ECSSD": 1,
                                                                                "FSS": 1}
    assert sorted(p.name for p in (tmp_path / "static" / "FSS").iterdir()) == ["class_a", "class_b"]
    trainval = tmp_path / "DAVIS" / "2017" / "trainval"
    assert (trainval / "ImageSets" / "2017" / "train.txt").read_text().split() == ["davis_000"]
    assert (trainval / "ImageSets" / "2017" / "val.txt").read_text().split() == ["davis_001"]


def test_static_images_are_seeded_pairs_with_one_marked_object(tmp_path):
    first = write_static_images([tmp_path / "a" / "x", tmp_path / "a" / "y"], seed=3, count=2, height=24, width=32)
    again = write_static_images([tmp_path / "b" / "x", tmp_path / "b" / "y"], seed=3, count=2, height=24, width=32)
    assert len(first) == 4 and len({p.name for p in first}) == 4          # numbered across the folders
    assert len(find_image_mask_pairs(tmp_path / "a")) == 4
    for one, other in zip(first, again):
        assert one.read_bytes() == other.read_bytes()
        with Image.open(one.with_suffix(".png")) as image:
            mask = np.array(image)
        assert set(np.unique(mask)) == {0, 255}


@pytest.mark.parametrize("script, flags, written", [
    ("make_synthetic_davis.py", ["--height", "16", "--width", "24", "--frames", "2", "--train", "0", "--val", "1",
                                 "--test_dev", "0", "--max_objects", "1"], "trainval/ImageSets/2017/val.txt"),
    ("make_synthetic_youtube.py", ["--height", "16", "--width", "24", "--frames", "2", "--train", "0",
                                   "--valid", "1", "--max_objects", "1"], "valid/meta.json"),
    ("make_synthetic_training_data.py", ["--size", "16", "24", "--images", "1", "--parts", "static"],
     "static/ECSSD/img_00001.png"),
])
def test_the_old_script_names_still_run(script, flags, written, tmp_path):
    """The per-layout command lines that README users know are the merged script with --layout."""
    done = subprocess.run([sys.executable, str(REPO / "scripts" / script), "--output", str(tmp_path), *flags],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / written).is_file()
