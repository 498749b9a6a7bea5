"""Your own videos: eval_generic.py on generated frame folders and a generated MP4, overlays, and
scripts/visualize.py. A randomly initialised STCN; frames of at most 64x96, so each run takes seconds."""
import contextlib
import io
import json
import re

import cv2
import numpy as np
import pytest
from PIL import Image
from test_eval_scripts import no_partial_folders, read_png, run_script

import eval_generic
from conftest import load_script
from dataset.synthetic import SyntheticVideo
from evaluation import resizing
from evaluation.overlay import OVERLAY_ALPHA, draw_overlay
from util.palette import davis_palette, write_label_png

pytestmark = pytest.mark.usefixtures("load_each_checkpoint_once")

CUSTOM_PALETTE = np.array([[0, 0, 0], [10, 200, 30], [200, 40, 220]] + [[7, 7, 7]] * 253, np.uint8)


def save_frame(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)


@pytest.fixture(scope="module")
def generic_set(tmp_path_factory):
    """cars: 5 PNG frames of 48x64, object 3 given at frame 0 and object 7 entering at frame 2 (that
    annotation holds both); ball: 4 JPEG frames of 40x72, object 1 given at frame 1 only, in a palette
    of its own."""
    root = tmp_path_factory.mktemp("custom")
    cars = SyntheticVideo(seed=1, height=48, width=64, num_objects=2, length=5, object_ids=(3, 7),
                          first_frames=(0, 2))
    for t, (rgb, _) in enumerate(cars):
        save_frame(root / "JPEGImages" / "cars" / f"{t:05d}.png", rgb)
    for t in (0, 2):
        write_label_png(root / "Annotations" / "cars" / f"{t:05d}.png", cars.labels(t))
    ball = SyntheticVideo(seed=2, height=40, width=72, num_objects=1, length=4, first_frames=(1,))
    for t, (rgb, _) in enumerate(ball):
        save_frame(root / "JPEGImages" / "ball" / f"{t:05d}.jpg", rgb)
    write_label_png(root / "Annotations" / "ball" / "00001.png", ball.labels(1), CUSTOM_PALETTE)
    return root, cars, ball


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """A 6-frame 64x96 MP4 at 10 frames/s with objects 2 and 5, and the label PNG of its first frame."""
    folder = tmp_path_factory.mktemp("clip")
    video = SyntheticVideo(seed=3, height=64, width=96, num_objects=2, length=6, object_ids=(2, 5))
    path = folder / "street.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (96, 64))
    for rgb in video.frames():
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    mask = folder / "first.png"
    write_label_png(mask, video.labels(0))
    return path, mask, video


def generic_args(checkpoint, output, *extra):
    return ["--model", checkpoint, "--output", output, "--device", "cpu", *extra]


def mp4_frames(path):
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return frames, fps


# ---------------------------------------------------------------- folders of frames
def test_published_flags_parse():
    args = eval_generic.build_parser().parse_args(
        ["--model", "saves/stcn.pth", "--data_path", "../custom", "--output", "out", "--top", "20", "--amp",
         "--mem_every", "3", "--include_last", "--memory", "lfu", "--memory_option", "capacity=4",
         "--device", "cpu"])
    assert (args.data_path, args.top, args.mem_every, args.include_last, args.amp) == ("../custom", 20, 3, True, True)
    assert (args.memory, args.memory_option, args.max_side, args.overlay) == ("lfu", ["capacity=4"], 0, False)


@pytest.fixture(scope="module")
def folder_run(generic_set, tmp_path_factory, random_stcn_checkpoint):
    """eval_generic.py --data_path <generic_set> --overlay: (output folder, stdout, stderr)."""
    output = tmp_path_factory.mktemp("folder_run") / "out"
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        message = run_script(eval_generic, generic_args(random_stcn_checkpoint, output, "--data_path",
                                                           generic_set[0], "--overlay", "--overlay_fps", "5"))
    assert message is None, message
    return output, stdout.getvalue(), stderr.getvalue()


def test_folders_give_every_frame_at_original_size_with_late_objects(generic_set, folder_run):
    root, cars, ball = generic_set
    output, printed, progress = folder_run
    assert "Processed 9 frames of 2 videos" in printed and "FPS" in printed
    assert re.search(r"frames: 100%.*\b9/9 ", progress), "a per-frame progress bar over all frames"

    assert sorted(p.name for p in (output / "cars").iterdir()) == [f"0000{t}.png" for t in range(5)]
    for t in range(5):
        mode, size, labels, palette = read_png(output / "cars" / f"0000{t}.png")
        assert mode == "P" and size == (64, 48)
        np.testing.assert_array_equal(palette, davis_palette())
        assert set(np.unique(labels)) <= ({0, 3} if t < 2 else {0, 3, 7})
    np.testing.assert_array_equal(read_png(output / "cars" / "00000.png")[2], cars.labels(0))
    at_entry = read_png(output / "cars" / "00002.png")[2]
    np.testing.assert_array_equal(at_entry[cars.labels(2) == 7], 7)  # the given mask of the late object

    ball_frames = [read_png(output / "ball" / f"0000{t}.png") for t in range(4)]
    assert all(mode == "P" and size == (72, 40) for mode, size, _, _ in ball_frames)
    np.testing.assert_array_equal(ball_frames[0][3], CUSTOM_PALETTE)  # the palette of the given mask
    assert not ball_frames[0][2].any(), "frames before the first given object are background"
    np.testing.assert_array_equal(ball_frames[1][2], ball.labels(1))

    config = json.loads((output / "eval_config.json").read_text())
    assert config["benchmark"] == "generic" and config["data_path"] == str(root) and config["videos"] == 2
    assert config["memory_options"]["mem_every"] == 5 and config["memory_options"]["top_k"] == 20
    assert config["max_side"] == 0 and config["overlay"] is True
    assert sorted(p.name for p in output.iterdir()) == ["ball", "cars", "eval_config.json", "overlays"]
    assert no_partial_folders(output)


def test_overlay_and_visualize_draw_the_result_folder(generic_set, folder_run, tmp_path):
    root, cars, _ = generic_set
    output = folder_run[0]
    assert sorted(p.name for p in (output / "overlays").iterdir()) == ["ball.gif", "ball.mp4", "cars.gif",
                                                                       "cars.mp4"]
    frames, fps = mp4_frames(output / "overlays" / "cars.mp4")
    assert len(frames) == 5 and frames[0].shape == (48, 64, 3) and fps == 5
    with Image.open(output / "overlays" / "ball.gif") as gif:
        assert gif.n_frames == 4 and gif.size == (72, 40)
    object_3 = cars.labels(0) == 3
    source = cars.frame(0)[0].astype(float)
    colour = davis_palette()[3].astype(float)
    # the object is pulled towards its colour (the MP4 is lossy, so compare distances)
    assert np.abs(frames[0][object_3] - colour).mean() < np.abs(source[object_3] - colour).mean() - 20

    # scripts/visualize.py on the same folders draws the same pictures (MP4 coding is deterministic)
    visualize = load_script("visualize")
    movie = tmp_path / "cars.mp4"
    assert run_script(visualize, ["--frames", root / "JPEGImages" / "cars", "--masks", output / "cars",
                                     "--output", movie, "--fps", "5", "--gif", tmp_path / "cars.gif"]) is None
    again, _ = mp4_frames(movie)
    np.testing.assert_array_equal(np.stack(again), np.stack(frames))
    assert (tmp_path / "cars.gif").is_file() and no_partial_folders(tmp_path)


# ---------------------------------------------------------------- a video file
def test_video_file_streamed_at_reduced_size_with_full_size_masks(clip, tmp_path, random_stcn_checkpoint,
                                                                  capsys):
    path, mask, video = clip
    output = tmp_path / "out"
    assert run_script(eval_generic, generic_args(random_stcn_checkpoint, output, "--video", path, "--mask", mask,
                                                    "--max_side", "48", "--overlay")) is None
    assert "Processed 6 frames of 1 videos" in capsys.readouterr().out
    names = sorted(p.name for p in (output / "street").iterdir())
    assert names == [f"0000{t}.png" for t in range(6)]
    for name in names:
        mode, size, labels, _ = read_png(output / "street" / name)
        assert mode == "P" and size == (96, 64)            # written at full size
        assert set(np.unique(labels)) <= {0, 2, 5}
    first = read_png(output / "street" / "00000.png")[2]
    assert (first == video.labels(0)).mean() > 0.95        # processed at 32x48 and resized back
    frames, fps = mp4_frames(output / "overlays" / "street.mp4")
    assert len(frames) == 6 and frames[0].shape == (64, 96, 3) and fps == 10   # the file's own frame rate
    config = json.loads((output / "eval_config.json").read_text())
    assert (config["video"], config["mask"], config["max_side"]) == (str(path), str(mask), 48)
    assert no_partial_folders(output)


def test_video_file_frames_stream_one_at_a_time(clip):
    from dataset.user_videos import VideoFile
    path, mask, video = clip
    source = VideoFile(path, mask)
    assert (source.name, source.size, len(source), source.fps) == ("street", (64, 96), 6, 10)
    frames = source.frames()
    first = next(frames)                          # decoding starts without reading the rest
    assert first.shape == (64, 96, 3) and first.dtype == np.uint8
    assert np.abs(first.astype(int) - video.frame(0)[0]).mean() < 10   # lossy MP4 of the same picture
    assert 1 + sum(1 for _ in frames) == 6
    assert list(zip(source.frame_names, range(3))) == [("00000", 0), ("00001", 1), ("00002", 2)]


def test_max_side_size_scales_only_larger_frames():
    assert resizing.max_side_size(2160, 3840, 960) == (540, 960)
    assert resizing.max_side_size(3840, 2160, 960) == (960, 540)
    assert resizing.max_side_size(480, 854, 960) == (480, 854)
    assert resizing.max_side_size(480, 854, 0) == (480, 854)


# ---------------------------------------------------------------- drawing
def test_draw_overlay_blends_outlines_and_numbers_each_object():
    frame = np.full((60, 80, 3), 100, np.uint8)
    labels = np.zeros((60, 80), np.uint8)
    labels[10:50, 10:40] = 5
    out = draw_overlay(frame, labels)
    colour = davis_palette()[5].astype(float)
    np.testing.assert_array_equal(out[15, 14], np.round(100 * (1 - OVERLAY_ALPHA) + colour * OVERLAY_ALPHA))
    np.testing.assert_array_equal(out[10, 25], colour)            # the outline
    np.testing.assert_array_equal(out[55:, :], frame[55:, :])     # background untouched
    white = np.argwhere(out.min(axis=2) > 200)   # anti-aliased white text
    assert len(white) and (np.abs(white.mean(axis=0) - (29.5, 24.5)) < 3).all(), "the id sits at the centroid"
    with pytest.raises(ValueError, match="mask is 60x80 but its frame is 30x80"):
        draw_overlay(frame[:30], labels)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize("case, expected", [
    ("no_input", r"give either --data_path \(folders of frames\) or --video \(a file\)"),
    ("both_inputs", r"give either --data_path"),
    ("video_without_mask", r"--video needs --mask"),
    ("mask_without_video", r"--mask goes with --video"),
    ("undecodable_video", r"broken.mp4: (OpenCV cannot open|no frame could be decoded)"),
    ("mask_size", r"small.png: mask is 32x48 but the frames of .*street.mp4 are 64x96"),
    ("empty_mask", r"empty.png: the mask holds no object"),
    ("no_annotations", r"Annotations/cars: video cars has no annotation PNGs"),
    ("annotation_without_frame", r"Annotations/cars/00009.png: annotation without a frame"),
    ("empty_annotations", r"Annotations/ball: the annotations of video ball hold no object"),
    ("no_frame_root", r"JPEGImages: folder is missing; --data_path should hold"),
    ("negative_max_side", r"--max_side must be 0 \(original size\) or positive, got -1"),
])
def test_bad_input_gives_one_error_line_before_anything_is_written(case, expected, generic_set, clip, tmp_path,
                                                                   random_stcn_checkpoint):
    import shutil
    root = tmp_path / "data"
    shutil.copytree(generic_set[0], root)
    path, mask, _ = clip
    inputs = {"no_input": [], "both_inputs": ["--data_path", root, "--video", path, "--mask", mask],
              "video_without_mask": ["--video", path], "mask_without_video": ["--data_path", root, "--mask", mask],
              "negative_max_side": ["--data_path", root, "--max_side", "-1"]}.get(case, ["--data_path", root])
    if case == "undecodable_video":
        (tmp_path / "broken.mp4").write_bytes(b"not a video at all")
        inputs = ["--video", tmp_path / "broken.mp4", "--mask", mask]
    if case == "mask_size":
        write_label_png(tmp_path / "small.png", np.ones((32, 48), np.uint8))
        inputs = ["--video", path, "--mask", tmp_path / "small.png"]
    if case == "empty_mask":
        write_label_png(tmp_path / "empty.png", np.zeros((64, 96), np.uint8))
        inputs = ["--video", path, "--mask", tmp_path / "empty.png"]
    if case == "no_annotations":
        shutil.rmtree(root / "Annotations" / "cars")
    if case == "annotation_without_frame":
        write_label_png(root / "Annotations" / "cars" / "00009.png", np.zeros((48, 64), np.uint8))
    if case == "empty_annotations":
        write_label_png(root / "Annotations" / "ball" / "00001.png", np.zeros((40, 72), np.uint8))
    if case == "no_frame_root":
        shutil.rmtree(root / "JPEGImages")
    output = tmp_path / "out"
    message = run_script(eval_generic, generic_args(random_stcn_checkpoint, output, *inputs))
    assert message is not None and message.startswith("error: ") and "\n" not in message
    assert re.search(expected, message), message
    assert not output.exists()


def test_visualize_rejects_masks_that_match_no_frame(generic_set, tmp_path):
    root, cars, _ = generic_set
    visualize = load_script("visualize")
    masks = tmp_path / "masks"
    for t in (1, 3):   # frames without a mask are left out
        write_label_png(masks / f"0000{t}.png", cars.labels(t))
    movie = tmp_path / "ok.mp4"
    assert run_script(visualize, ["--frames", root / "JPEGImages" / "cars", "--masks", masks,
                                     "--output", movie]) is None
    frames, fps = mp4_frames(movie)
    assert len(frames) == 2 and fps == 24
    write_label_png(masks / "00042.png", cars.labels(0))
    message = run_script(visualize, ["--frames", root / "JPEGImages" / "cars", "--masks", masks,
                                        "--output", tmp_path / "bad.mp4"])
    assert re.fullmatch(r"error: .*masks/00042.png: mask without a frame \(1 such mask\(s\)\)", message), message
    write_label_png(masks / "00042.png", np.zeros((8, 8), np.uint8))
    (masks / "00042.png").rename(masks / "00004.png")
    message = run_script(visualize, ["--frames", root / "JPEGImages" / "cars", "--masks", masks,
                                        "--output", tmp_path / "bad.mp4"])
    assert re.fullmatch(r"error: .*masks/00004.png: mask is 8x8 but its frame is 48x64", message), message
    assert not (tmp_path / "bad.mp4").exists() and no_partial_folders(tmp_path)


def test_bfloat16_with_amp_is_one_error_line_before_any_work(generic_set, tmp_path):
    output = tmp_path / "o"
    message = run_script(eval_generic, ["--model", tmp_path / "missing.pth", "--data_path", generic_set[0],
                                        "--output", output, "--precision", "bfloat16", "--amp", "--device", "cpu"])
    assert message == ("error: --precision bfloat16 and --amp exclude each other: bfloat16 is the CPU option, "
                       "--amp is CUDA float16; choose one")
    assert not output.exists()
