"""Specification of the synthetic video generator and the synthetic benchmark layouts."""
import numpy as np
import pytest

from dataset.synthetic import SyntheticVideo


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
])
def test_bad_arguments_are_rejected_clearly(kwargs, message):
    args = dict(seed=0, height=16, width=16, num_objects=2, length=5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        SyntheticVideo(**args)


def test_frame_index_out_of_range():
    with pytest.raises(IndexError):
        SyntheticVideo(seed=0, height=16, width=16, num_objects=1, length=2).frame(2)
