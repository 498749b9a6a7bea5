"""Training data stay aligned through every augmentation, and a short run from scratch lowers the loss.

The long version (held-out J&F against baselines) is ``scripts/learning_check.py``; see the README's
"Does it learn?".
"""
import cv2
import numpy as np
import pytest
import torch

from dataset.sampler import SampleKey
from dataset.static_dataset import StaticImageDataset
from dataset.synthetic import write_synthetic_davis, write_synthetic_youtube
from dataset.vos_dataset import davis_train_dataset
from model.normalization import IMAGENET_MEAN, IMAGENET_STD
from training.config import build_parser, resolve_config
from training.trainer import Trainer
from util.palette import write_label_png

pytestmark = pytest.mark.usefixtures("one_thread")

WHITE, BLACK = 250, 5      # objects are painted white on a black scene
BRIGHT = 170               # above: object colour after jitter; the border fill (ImageNet mean) stays below
EDGE_BAND = 1.5            # pixels this close to a label edge may blend object and background


def away_from_edges(label):
    """Pixels farther than EDGE_BAND from the boundary between labelled and unlabelled pixels."""
    inside = (label > 0).astype(np.uint8)
    distance = np.maximum(cv2.distanceTransform(inside, cv2.DIST_L2, 3),
                          cv2.distanceTransform(1 - inside, cv2.DIST_L2, 3))
    return distance > EDGE_BAND


def painted_scene(seed, size=(48, 64), objects=2):
    """A black image with white ellipses and the label map of exactly those pixels."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(size, np.uint8)
    for k in range(1, objects + 1):
        centre = (int(rng.integers(12, size[1] - 12)), int(rng.integers(12, size[0] - 12)))
        axes = (int(rng.integers(5, 11)), int(rng.integers(5, 11)))
        cv2.ellipse(labels, centre, axes, float(rng.uniform(0, 180)), 0, 360, k, -1)
    image = np.where(labels[..., None] > 0, WHITE, BLACK).astype(np.uint8).repeat(3, axis=2)
    return image, labels


def misaligned_fraction(clip):
    """Pixels where 'is white' and 'has a label' disagree, away from label edges, per labelled pixel
    (the worst frame of the clip)."""
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    rgb = ((clip["rgb"] * std + mean) * 255).mean(1).numpy()     # T x H x W brightness
    labels = clip["labels"].numpy()
    worst = 0.0
    for frame, label in zip(rgb, labels):
        keep = away_from_edges(label)
        wrong = ((frame > BRIGHT) != (label > 0))[keep].sum()
        worst = max(worst, float(wrong / max(1, (label > 0)[keep].sum())))
    return worst


def write_video(root, name, frames):
    from PIL import Image
    for t, (image, labels) in enumerate(frames):
        (root / "JPEGImages" / "480p" / name).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "JPEGImages" / "480p" / name / f"{t:05d}.png")
        write_label_png(root / "Annotations" / "480p" / name / f"{t:05d}.png", labels)


def test_the_alignment_check_catches_a_shifted_mask():
    image, labels = painted_scene(0)
    from dataset.clip import make_clip
    good = make_clip([image], [labels.astype(np.int64)], 2, 2, "v", [0])
    shifted = make_clip([image], [np.roll(labels, 3, axis=1).astype(np.int64)], 2, 2, "v", [0])
    assert misaligned_fraction(good) == 0.0
    assert misaligned_fraction(shifted) > 0.2


def test_static_pseudo_videos_keep_masks_on_their_objects(tmp_path):
    folder = tmp_path / "static" / "painted"
    folder.mkdir(parents=True)
    for i in range(3):
        image, labels = painted_scene(i, objects=1)
        cv2.imwrite(str(folder / f"img{i}.png"), (labels > 0).astype(np.uint8) * 255)
        cv2.imwrite(str(folder / f"img{i}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 100])
    # every frame goes through scaling, flip, affine, crop and (forced here) a thin-plate spline
    dataset = StaticImageDataset([(tmp_path / "static" / "painted", 1)], size=48, tps_probability=1.0)
    for seed in range(8):
        clip = dataset[SampleKey(seed % 3, (seed,), None)]
        assert clip["labels"][0].any()
        assert misaligned_fraction(clip) < 0.05, seed


def test_video_clips_keep_masks_on_their_objects(tmp_path):
    root = tmp_path / "DAVIS"
    # one object per frame (a second one could be cropped out of the first frame and so, rightly,
    # be left unlabelled in the others); it jumps between frames
    frames = [painted_scene(100 + t, objects=1) for t in range(4)]
    write_video(root, "painted", frames)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "train.txt").write_text("painted\n")
    # flip, random resized crop, jitter, grayscale and per-frame affine
    dataset = davis_train_dataset(root, repeat=1, size=32)
    for seed in range(8):
        clip = dataset[SampleKey(0, (seed,), 3)]
        assert clip["labels"][0].any() and clip["selector"].sum() >= 1
        assert misaligned_fraction(clip) < 0.05, seed


def test_a_short_run_from_scratch_lowers_the_loss(tmp_path):
    """Real STCN, --no_pretrained --bn train, generated videos: the loss of the last iterations is well
    below that of the first ones."""
    write_synthetic_davis(tmp_path / "DAVIS", seed=1, num_train=3, num_val=0, num_test_dev=0, length=8,
                          height=48, width=64, max_objects=2, deform=0.1)
    write_synthetic_youtube(tmp_path / "YouTube", seed=1, num_train=2, num_valid=0, length=40, height=48,
                            width=64, max_objects=2, deform=0.1)
    flags = ["--stage", "3", "--id", "learn", "--save_dir", tmp_path / "runs", "--size", "32",
             "--batch_size", "2", "--iterations", "30", "--lr", "1e-4", "--steps", "--no_pretrained",
             "--bn", "train", "--num_workers", "0", "--no_progress", "--device", "cpu", "--log_every", "10",
             "--davis_root", tmp_path / "DAVIS", "--yv_root", tmp_path / "YouTube"]
    config = resolve_config(build_parser().parse_args([str(f) for f in flags]))
    history = Trainer(config, record_history=True).run()
    assert len(history) == 30
    # medians: single batches of a few generated clips range from easy to hard
    first, last = np.median(history[:10]), np.median(history[-10:])
    assert last < 0.6 * first, history
