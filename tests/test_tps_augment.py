"""TPS warp and augmentation primitives keep image and mask aligned (dataset/tps.py, dataset/augment.py)."""
import numpy as np
import pytest

from dataset.augment import (affine_matrix, color_jitter, hflip, random_affine_matrix, random_grayscale,
                             random_resized_crop_box, warp_affine)
from dataset.tps import ThinPlateSpline, random_tps_warp, tps_warp


def blob_scene(size=64, seed=0):
    """A mask of a few random ellipses and an image that shows exactly that mask (bright on dark)."""
    import cv2
    rng = np.random.default_rng(seed)
    mask = np.zeros((size, size), np.uint8)
    for k in range(1, 3):
        center = tuple(int(v) for v in rng.integers(size // 4, 3 * size // 4, 2))
        axes = tuple(int(v) for v in rng.integers(size // 10, size // 4, 2))
        cv2.ellipse(mask, center, axes, float(rng.uniform(0, 180)), 0, 360, k, -1)
    image = np.where(mask[..., None] > 0, 235, 20).astype(np.uint8).repeat(3, axis=2)
    return image, mask


def interior(mask):
    """Pixels whose whole 3x3 neighbourhood has one label (away from edges)."""
    import cv2
    kernel = np.ones((3, 3), np.uint8)
    same = np.ones(mask.shape, bool)
    for value in np.unique(mask):
        region = (mask == value).astype(np.uint8)
        inner = cv2.erode(region, kernel, borderType=cv2.BORDER_REPLICATE)
        same &= ~((region == 1) & (inner == 0))
    return same


def assert_aligned(image, mask, fill_is_background=True):
    bright = image[..., 0] > 176
    keep = interior(mask)
    assert keep.mean() > 0.5
    np.testing.assert_array_equal(bright[keep], (mask > 0)[keep])


def test_tps_interpolates_its_control_points():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 1, (12, 2))
    dst = src + rng.normal(0, 0.05, (12, 2))
    spline = ThinPlateSpline(src, dst)
    np.testing.assert_allclose(spline(src), dst, atol=1e-9)
    # an affine set of targets is reproduced exactly everywhere (no bending)
    affine = src @ np.array([[1.1, 0.2], [-0.1, 0.9]]) + 0.05
    q = rng.uniform(0, 1, (50, 2))
    np.testing.assert_allclose(ThinPlateSpline(src, affine)(q), q @ np.array([[1.1, 0.2], [-0.1, 0.9]]) + 0.05,
                               atol=1e-8)


def test_tps_with_no_displacement_is_identity():
    image, mask = blob_scene()
    src = np.random.default_rng(1).uniform(0, 1, (12, 2))
    warped, (wmask,) = tps_warp(image, [mask], src, src)
    np.testing.assert_array_equal(wmask, mask)
    assert np.abs(warped.astype(int) - image).max() <= 1


def test_tps_moves_source_content_onto_target_points():
    size = 96
    src = np.array([[0.5, 0.5], [0.2, 0.2], [0.8, 0.2], [0.2, 0.8], [0.8, 0.8]])
    dst = src.copy()
    dst[0] = [0.58, 0.44]            # move the centre point by (+0.08, -0.06)
    mask = np.zeros((size, size), np.uint8)
    cy = cx = int(round(0.5 * (size - 1)))
    mask[cy - 1:cy + 2, cx - 1:cx + 2] = 1
    image = np.where(mask[..., None] > 0, 235, 20).astype(np.uint8).repeat(3, axis=2)
    warped, (wmask,) = tps_warp(image, [mask], src, dst)
    ys, xs = np.nonzero(wmask)
    assert abs(xs.mean() - 0.58 * (size - 1)) < 1.0
    assert abs(ys.mean() - 0.44 * (size - 1)) < 1.0
    ys_i, xs_i = np.nonzero(warped[..., 0] > 127)
    assert abs(xs_i.mean() - xs.mean()) < 1.0 and abs(ys_i.mean() - ys.mean()) < 1.0


@pytest.mark.parametrize("seed", range(5))
def test_random_tps_keeps_image_and_mask_aligned(seed):
    image, mask = blob_scene(seed=seed)
    rng = np.random.default_rng(seed)
    warped, (wmask,) = random_tps_warp(image, [mask], rng, std=0.04, fill=(20, 20, 20))
    assert not np.array_equal(wmask, mask)          # it really deformed something
    assert set(np.unique(wmask)) <= set(np.unique(mask))  # nearest sampling: labels untouched
    assert_aligned(warped, wmask)


@pytest.mark.parametrize("seed", range(5))
def test_random_affine_keeps_image_and_mask_aligned(seed):
    image, mask = blob_scene(seed=seed + 10)
    rng = np.random.default_rng(seed)
    matrix = random_affine_matrix(rng, mask.shape, degrees=20, scale=(0.9, 1.1), shear=10)
    warped, (wmask,) = warp_affine(image, [mask], matrix, fill=(20, 20, 20))
    assert not np.array_equal(wmask, mask)
    assert_aligned(warped, wmask)


def test_affine_matrix_rotates_about_the_centre():
    m = affine_matrix((10.0, 10.0), angle=90)
    np.testing.assert_allclose(m @ np.array([10.0, 10.0, 1.0]), [10.0, 10.0], atol=1e-12)
    np.testing.assert_allclose(m @ np.array([15.0, 10.0, 1.0]), [10.0, 15.0], atol=1e-12)
    s = affine_matrix((0.0, 0.0), scale=2.0, translate=(3.0, 4.0))
    np.testing.assert_allclose(s @ np.array([1.0, 1.0, 1.0]), [5.0, 6.0])


def test_flips_keep_alignment_and_crop_boxes_stay_inside():
    image, mask = blob_scene(size=80, seed=3)
    rng = np.random.default_rng(0)
    im, (m,) = hflip(image, [mask])
    assert_aligned(im, m)
    box = random_resized_crop_box(rng, mask.shape, scale=(0.36, 1.0), ratio=(0.75, 1.25))
    y, x, h, w = box
    assert 0 <= y and 0 <= x and y + h <= 80 and x + w <= 80
    assert 0.36 * 6400 * 0.95 <= h * w <= 6400


def test_color_jitter_ranges_and_grayscale():
    rng = np.random.default_rng(0)
    image = np.full((8, 8, 3), 100, np.uint8)
    for _ in range(20):
        out = color_jitter(image, rng, brightness=0.1)
        assert 89 <= out.mean() <= 111
    colourful = np.zeros((4, 4, 3), np.uint8)
    colourful[..., 0] = 200
    gray = random_grayscale(colourful, np.random.default_rng(0), p=1.0)
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    assert random_grayscale(colourful, np.random.default_rng(0), p=0.0) is colourful
    hue = color_jitter(colourful, rng, hue=0.05)
    assert hue.shape == colourful.shape and hue.dtype == np.uint8
