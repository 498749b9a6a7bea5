"""inference.labels.ObjectChannels: user label ids <-> probability channels, for segment_video, the
eval scripts' result writer and the golden comparison."""
import numpy as np
import pytest
import torch

from evaluation import runner
from evaluation.golden import GOLDEN_RUNS, MARGIN, compare, load_golden
from inference import InferenceCore, ObjectChannels, object_ids, segment_video
from util.palette import davis_palette, read_label_png

H, W = 48, 64


def square(y, x, label, size=16):
    m = np.zeros((H, W), dtype=np.uint8)
    m[y:y + size, x:x + size] = label
    return m


def one_hot(labels, channels):
    """(K+1) x H x W probabilities that are 1 on each pixel's own channel."""
    probs = np.zeros((channels.num_channels, *labels.shape), np.float32)
    probs[0][labels == 0] = 1
    for obj in channels.ids:
        probs[channels.channel_of(obj)][labels == obj] = 1
    return probs


def test_ids_are_sorted_and_channels_count_from_one():
    channels = ObjectChannels([7, 3, 3, 12])
    assert channels.ids == (3, 7, 12) and channels.num_channels == 4
    assert [channels.channel_of(i) for i in (3, 7, 12)] == [1, 2, 3]
    assert ObjectChannels(np.array([7, 3])) == ObjectChannels([3, 7])
    with pytest.raises(ValueError, match="label id 5 is not an object of this video"):
        channels.channel_of(5)
    with pytest.raises(ValueError, match="0 is the background"):
        ObjectChannels([0, 1])
    with pytest.raises(TypeError):
        ObjectChannels([1.5])


def test_round_trip_ids_to_channels_to_labels_with_ids_7_and_255():
    labels = square(0, 0, 7) + square(24, 40, 255)
    labels[40:, :8] = 3
    channels = ObjectChannels.from_masks(labels)
    assert channels.ids == (3, 7, 255) and object_ids(labels) == [3, 7, 255]
    back = channels.to_labels(one_hot(labels, channels))
    assert back.dtype == np.uint8 and np.array_equal(back, labels)


def test_objects_of_every_given_frame_count_and_the_background_wins_ties():
    channels = ObjectChannels.from_masks({0: square(0, 0, 4), 9: square(24, 40, 2)})
    assert channels.ids == (2, 4)
    probs = np.zeros((3, H, W), np.float32)   # all channels tie: argmax picks the background
    assert not channels.to_labels(probs).any()


def test_scatter_places_objects_given_out_of_order_and_late():
    channels = ObjectChannels([3, 7])
    core = np.stack([np.full((H, W), v, np.float32) for v in (0.2, 0.5, 0.3)])   # background, 7, 3
    out = channels.scatter(core, [7, 3], H, W)
    assert out.dtype == np.float32 and out.shape == (3, H, W)
    assert (out[0] == 0.2).all() and (out[1] == 0.3).all() and (out[2] == 0.5).all()
    only_seven = channels.scatter(core[:2], [7], H, W)   # object 3 is given later
    assert (only_seven[2] == 0.5).all() and not only_seven[channels.channel_of(3)].any()
    nothing_yet = channels.scatter(None, [], H, W)
    assert (nothing_yet[0] == 1).all() and not nothing_yet[1:].any()
    with pytest.raises(ValueError, match="3 probability channels for the background and 1 objects"):
        channels.scatter(core, [7], H, W)


def test_non_integer_and_malformed_masks_are_refused():
    with pytest.raises(ValueError, match="the mask of frame 0 must be an H x W integer label map"):
        ObjectChannels.from_masks(np.ones((H, W), np.float32))
    with pytest.raises(ValueError, match="the mask of frame 4 must be an H x W integer label map"):
        ObjectChannels.from_masks({0: square(0, 0, 1), 4: square(0, 0, 2) > 0})   # boolean
    with pytest.raises(ValueError, match="must be an H x W integer label map"):
        ObjectChannels.from_masks(np.ones((H, W, 3), np.uint8))
    with pytest.raises(ValueError, match="mask dict keys must be frame indices >= 0"):
        ObjectChannels.from_masks({-1: square(0, 0, 1)})


def test_label_maps_refuse_ids_outside_8_bits_and_wrong_channel_counts():
    wide = ObjectChannels.from_masks(np.array([[0, 300]], np.int32))
    assert wide.ids == (300,)
    with pytest.raises(ValueError, match=r"label ids \[300\] do not fit an 8-bit label map"):
        wide.to_labels(np.zeros((2, 1, 2), np.float32))
    with pytest.raises(ValueError, match="2 probability channels, but the video has 3"):
        ObjectChannels([3, 7]).to_labels(np.zeros((2, H, W), np.float32))


def test_lost_ids_names_objects_that_vanish():
    given = ObjectChannels.from_masks({0: square(0, 0, 3), 5: square(20, 20, 9, size=1)})
    resized = ObjectChannels.from_masks({0: square(0, 0, 3), 5: np.zeros((H, W), np.uint8)})
    assert given.lost_ids(resized) == [9] and resized.lost_ids(given) == []


def test_segment_video_channels_follow_label_order_not_the_order_objects_are_given(net):
    """Object 7 is given at frame 0 and object 3 at frame 2: the core holds them as [7, 3], the
    video's channels are background, 3, 7."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    frames = [np.roll(base, 2 * t, axis=1) for t in range(5)]
    masks = {0: square(4, 4, 7), 2: square(28, 40, 3)}
    out = list(segment_video(net, iter(frames), masks))
    core = InferenceCore(net)
    with torch.inference_mode():
        direct = [core.step(t, f, mask=masks.get(t)).numpy() for t, f in enumerate(frames)]
    assert core.object_ids == [7, 3]
    channels = ObjectChannels.from_masks(masks)
    for t in range(5):
        assert np.allclose(out[t][0], direct[t][0]) and np.allclose(out[t][2], direct[t][1])
        if t < 2:
            assert not out[t][1].any(), "object 3 has probability 0 before it is given"
        else:
            assert np.allclose(out[t][1], direct[t][2])
    for t, obj in ((0, 7), (2, 3)):   # each object holds its given area in the frame it is given
        assert (channels.to_labels(out[t])[masks[t] == obj] == obj).all()


def test_result_writer_stores_label_ids_and_the_channel_ids(tmp_path):
    labels = square(0, 0, 7) + square(24, 40, 255)
    channels = ObjectChannels.from_masks(labels)
    probs = one_hot(labels, channels)
    runner.write_outputs(tmp_path / "masks", "00000", probs, channels, davis_palette(), tmp_path / "scores")
    written, _ = read_label_png(tmp_path / "masks" / "00000.png")
    assert np.array_equal(written, labels)
    with np.load(tmp_path / "scores" / "00000.npz") as scores:
        assert scores["object_ids"].tolist() == [7, 255] and scores["probs"].dtype == np.float16
        assert np.array_equal(channels.to_labels(scores["probs"]), labels)


@pytest.mark.parametrize("name", sorted(GOLDEN_RUNS))
def test_golden_masks_are_the_golden_probabilities_mapped_to_label_ids(name):
    """compare() maps channels to label ids (stcn_yv_seed2: ids 3, 5, 7); the published outputs
    agree with themselves, and swapping two channels shows as flips."""
    golden = load_golden(name)
    probs = golden["probs"]
    result = compare(probs, golden)
    assert result["flips"] == 0 and result["max"] == 0 and result["confident"] > 0
    swapped = compare(probs[[0, 2, 1, *range(3, len(probs))]], golden)
    top2 = np.sort(probs, axis=0)[-2:]
    assert swapped["flips"] > 0 and swapped["confident"] == int(((top2[1] - top2[0]) > MARGIN).sum())
