"""Training datasets, frame sampling, skip curriculum and the resumable sampler (dataset/)."""
import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from dataset.curriculum import BL30K_CURRICULUM, MAIN_CURRICULUM
from dataset.folders import DatasetFolderError
from dataset.sampler import SampleKey, TrainingBatchSampler
from dataset.static_dataset import StaticImageDataset, find_image_mask_pairs, static_sets
from dataset.synthetic import SyntheticVideo
from dataset.vos_dataset import (VOSTrainDataset, bl30k_dataset, davis_train_dataset, main_training_dataset,
                                 sample_frame_indices, youtube_train_dataset)
from util.palette import write_label_png

SIZE = 48


def key(index, n=0, skip=None):
    return SampleKey(index, (0, 0, n), skip)


def unnormalise(rgb):
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    return ((rgb * std + mean) * 255).permute(1, 2, 0).numpy()


def interior(labels):
    """Pixels whose 5x5 neighbourhood carries one label."""
    keep = np.ones(labels.shape, bool)
    for value in np.unique(labels):
        region = (labels == value).astype(np.uint8)
        keep &= ~((region == 1) & (cv2.erode(region, np.ones((5, 5), np.uint8)) == 0))
    return keep


def assert_clip_aligned(sample):
    """Frames painted bright exactly where an object is: after augmentation they must still agree."""
    for t in range(sample["rgb"].shape[0]):
        image = unnormalise(sample["rgb"][t])
        labels = sample["labels"][t].numpy()
        keep = interior(labels)
        bright = image.mean(axis=2) > 160
        assert keep.mean() > 0.5
        assert (bright[keep] == (labels > 0)[keep]).mean() > 0.999


def painted(rgb, labels):
    """An image that shows its label map: objects bright (235), background dark (20)."""
    return np.where(labels[..., None] > 0, 235, 20).astype(np.uint8).repeat(3, axis=2)


# ----------------------------------------------------------------------------- curriculum
@pytest.mark.parametrize("it,skip", [(0, 5), (14_999, 5), (15_000, 10), (30_000, 15), (45_000, 20),
                                     (60_000, 25), (134_999, 25), (135_000, 5), (149_999, 5)])
def test_main_training_curriculum_at_named_iterations(it, skip):
    assert MAIN_CURRICULUM.max_skip(it, 150_000) == skip


@pytest.mark.parametrize("it,skip", [(0, 5), (50_000, 10), (200_000, 25), (399_999, 25), (400_000, 5)])
def test_bl30k_curriculum_anneals_at_80_percent(it, skip):
    assert BL30K_CURRICULUM.max_skip(it, 500_000) == skip


# ----------------------------------------------------------------------------- frame sampling
def test_frame_indices_respect_max_skip_and_both_orders_occur():
    orders = set()
    for seed in range(200):
        rng = np.random.default_rng(seed)
        idx = sample_frame_indices(rng, length=40, num_frames=3, max_skip=4)
        assert len(set(idx)) == 3
        ordered = sorted(idx)
        assert all(b - a <= 4 for a, b in zip(ordered, ordered[1:]))
        orders.add("forward" if idx == ordered else "reversed")
        assert idx in (ordered, ordered[::-1])
    assert orders == {"forward", "reversed"}


def test_frame_indices_short_video():
    idx = sample_frame_indices(np.random.default_rng(0), length=3, num_frames=3, max_skip=25)
    assert sorted(idx) == [0, 1, 2]
    with pytest.raises(ValueError):
        sample_frame_indices(np.random.default_rng(0), length=2, num_frames=3, max_skip=5)


# ----------------------------------------------------------------------------- sampler
def test_sampler_resumes_with_the_same_batches():
    straight = TrainingBatchSampler(10, 3, seed=7, iterations=12, skip_at=lambda it: it)
    batches = list(straight)
    resumed = list(TrainingBatchSampler(10, 3, seed=7, start_iteration=5, iterations=12, skip_at=lambda it: it))
    assert batches[5:] == resumed
    assert [b[0].max_skip for b in batches] == list(range(12))
    assert straight.batch(9) == batches[9]


def test_sampler_splits_each_epoch_across_processes():
    ranks = [list(TrainingBatchSampler(10, 5, seed=1, rank=r, world_size=2, iterations=1)) for r in range(2)]
    indices = [k.index for r in ranks for k in r[0]]
    assert sorted(indices) == list(range(10))             # one epoch, disjoint shares
    entropies = {k.entropy for r in ranks for k in r[0]}
    assert len(entropies) == 10                            # every sample has its own seed
    next_epoch = TrainingBatchSampler(10, 5, seed=1, rank=0, world_size=2, iterations=2).batch(1)
    assert {k.entropy[1] for k in next_epoch} == {1}


# ----------------------------------------------------------------------------- static images
def test_static_sets_repeat_high_quality_sets(training_data):
    sets = dict((p.name, r) for p, r in static_sets(training_data / "static"))
    assert sets == {"BIG_small": 5, "ECSSD": 1, "FSS": 1}
    assert len(find_image_mask_pairs(training_data / "static" / "FSS")) == 4   # nested class folders
    ds = StaticImageDataset(static_sets(training_data / "static"), size=SIZE)
    assert len(ds) == 5 * 2 + 2 + 4


def test_static_sample_is_a_deterministic_three_frame_clip(training_data):
    ds = StaticImageDataset(static_sets(training_data / "static"), size=SIZE)
    a, b = ds[key(3)], ds[key(3)]
    assert a["rgb"].shape == (3, 3, SIZE, SIZE) and a["rgb"].dtype == torch.float32
    assert a["labels"].shape == (3, SIZE, SIZE) and a["labels"].dtype == torch.int64
    assert set(a["labels"].unique().tolist()) <= {0, 1} and a["labels"][0].any()
    assert a["selector"].tolist() == [1.0, 0.0]
    assert torch.equal(a["rgb"], b["rgb"]) and torch.equal(a["labels"], b["labels"])
    assert not torch.equal(a["rgb"], ds[key(3, n=1)]["rgb"])
    assert not torch.equal(a["labels"][0], a["labels"][1])   # frames really differ


def test_static_augmentation_keeps_image_and_mask_aligned(tmp_path):
    folder = tmp_path / "static" / "ECSSD"
    folder.mkdir(parents=True)
    for i in range(2):
        rgb, labels = SyntheticVideo(seed=i, height=72, width=96, num_objects=1, length=1).frame(0)
        Image.fromarray(painted(rgb, labels)).save(folder / f"{i}.png".replace(".png", ".bmp"))
        Image.fromarray(((labels > 0) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    ds = StaticImageDataset([(folder, 1)], size=SIZE, tps_probability=1.0, tps_std=0.04)
    for n in range(6):
        assert_clip_aligned(ds[key(n % 2, n)])


# ----------------------------------------------------------------------------- videos
def write_painted_video(root, name, seed, frames=6, ids=(1, 2)):
    video = SyntheticVideo(seed=seed, height=72, width=96, num_objects=len(ids), length=frames, object_ids=ids)
    for t in range(frames):
        rgb, labels = video.frame(t)
        (root / "JPEGImages" / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(painted(rgb, labels)).save(root / "JPEGImages" / name / f"{t:05d}.jpg", quality=100)
        (root / "Annotations" / name).mkdir(parents=True, exist_ok=True)
        write_label_png(root / "Annotations" / name / f"{t:05d}.png", labels)


def test_video_augmentation_keeps_frames_and_masks_aligned(tmp_path):
    write_painted_video(tmp_path, "painted", seed=3)
    ds = VOSTrainDataset(tmp_path / "JPEGImages", tmp_path / "Annotations", size=SIZE)
    for n in range(6):
        sample = ds[key(0, n, skip=5)]
        assert sample["labels"][0].any()
        assert_clip_aligned(sample)


def test_bl30k_maps_ids_and_ignores_tiny_objects(tmp_path, training_data):
    ds = bl30k_dataset(training_data / "BL30K", size=SIZE)
    sample = ds[key(1, skip=5)]                              # video with object ids 3 and 7
    assert set(sample["labels"].unique().tolist()) <= {0, 1, 2}
    # a video whose second object is 3x3 pixels: only the big one may be a target
    root = tmp_path / "BL30K"
    for t in range(4):
        labels = np.zeros((64, 64), np.uint8)
        labels[10:50, 10:50] = 4
        labels[55:58, 55:58] = 9
        (root / "JPEGImages" / "v").mkdir(parents=True, exist_ok=True)
        (root / "Annotations" / "v").mkdir(parents=True, exist_ok=True)
        Image.fromarray(painted(None, labels)).save(root / "JPEGImages" / "v" / f"{t}.jpg")
        write_label_png(root / "Annotations" / "v" / f"{t}.png", labels)
    tiny = bl30k_dataset(root, size=64)
    for n in range(4):
        s = tiny[key(0, n)]
        assert s["selector"].tolist() == [1.0, 0.0]
        assert set(s["labels"].unique().tolist()) <= {0, 1}


def test_davis_is_repeated_five_times_and_excludes_validation(training_data):
    ds = davis_train_dataset(training_data / "DAVIS", size=SIZE)
    assert [v for v, _ in ds.videos] == ["davis_000", "davis_001"]
    assert len(ds) == 10
    for root in (training_data / "DAVIS" / "2017", training_data / "DAVIS" / "2017" / "trainval"):
        assert len(davis_train_dataset(root, size=SIZE)) == 10


def test_youtube_skip_is_divided_by_five(training_data):
    ds = youtube_train_dataset(training_data / "YouTube", size=SIZE)
    for n in range(30):
        frames = sorted(ds[key(0, n, skip=10)]["frame_indices"].tolist())
        assert all(b - a <= 2 for a, b in zip(frames, frames[1:]))
        frames = sorted(ds[key(1, n, skip=5)]["frame_indices"].tolist())
        assert frames[2] - frames[0] == 2                      # skip 5 -> consecutive stored frames


def test_main_dataset_concatenates_davis_and_youtube(training_data):
    ds = main_training_dataset(training_data / "DAVIS", training_data / "YouTube", size=SIZE)
    assert len(ds) == 10 + 2
    names = [ds[key(i, skip=5)]["name"] for i in (0, 9, 10, 11)]
    assert names[0].startswith("davis") and names[1].startswith("davis")
    assert names[2] == "yt_000" and names[3] == "yt_001"
    batch = torch.utils.data.default_collate([ds[key(i, i, 5)] for i in (0, 11)])
    assert batch["rgb"].shape == (2, 3, 3, SIZE, SIZE) and batch["selector"].shape == (2, 2)


def test_worker_count_does_not_change_the_data(training_data):
    ds = main_training_dataset(training_data / "DAVIS", training_data / "YouTube", size=SIZE)
    sampler = TrainingBatchSampler(len(ds), 2, seed=3, iterations=2, skip_at=lambda it: 10)
    loads = [list(torch.utils.data.DataLoader(ds, batch_sampler=sampler, num_workers=w)) for w in (0, 2)]
    for a, b in zip(*loads):
        assert torch.equal(a["rgb"], b["rgb"]) and torch.equal(a["labels"], b["labels"])


# ----------------------------------------------------------------------------- bad folders
def test_bad_folders_fail_with_one_clear_error(tmp_path, training_data):
    missing = tmp_path / "nowhere"
    with pytest.raises(DatasetFolderError, match=str(missing)):
        static_sets(missing)
    empty = tmp_path / "empty_set"
    empty.mkdir()
    with pytest.raises(DatasetFolderError, match=f"{empty}.*no image/mask pairs"):
        StaticImageDataset([(empty, 1)])
    with pytest.raises(DatasetFolderError, match=f"BL30K folder {missing}"):
        bl30k_dataset(missing)
    with pytest.raises(DatasetFolderError, match="JPEGImages/480p"):
        davis_train_dataset(empty)
    with pytest.raises(DatasetFolderError, match="train_480p"):
        youtube_train_dataset(empty)
    bare = tmp_path / "bare"
    (bare / "JPEGImages" / "v").mkdir(parents=True)
    (bare / "Annotations" / "v").mkdir(parents=True)
    with pytest.raises(DatasetFolderError, match="no video in .*JPEGImages has 3 or more frames"):
        bl30k_dataset(bare)
    no_list = tmp_path / "davis" / "JPEGImages" / "480p"
    no_list.mkdir(parents=True)
    with pytest.raises(DatasetFolderError, match="train.txt"):
        davis_train_dataset(tmp_path / "davis")
