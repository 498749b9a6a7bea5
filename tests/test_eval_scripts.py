"""End to end: synthetic benchmark sets -> eval_davis.py / eval_youtube.py / scripts/evaluate.py.

The network is a randomly initialised STCN saved as a checkpoint file; frames are 64x96 so a run
takes seconds. Bad inputs must each give one clear error naming the file and leave no half-written
video folder.
"""
import json
import platform
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

import eval_davis
import eval_youtube
from conftest import REPO, load_script
from dataset.synthetic import write_synthetic_davis, write_synthetic_youtube
from evaluation import GLOBAL_COLUMNS, resizing
from util.palette import davis_palette, write_label_png

HEIGHT, WIDTH = 64, 96


pytestmark = pytest.mark.usefixtures("load_each_checkpoint_once")


@pytest.fixture(scope="module")
def checkpoint(random_stcn_checkpoint):
    return random_stcn_checkpoint


@pytest.fixture(scope="module")
def davis_set(tmp_path_factory):
    """Two val videos with two objects each (seed 5), one test-dev video; 3 frames of 64x96."""
    root = tmp_path_factory.mktemp("davis")
    write_synthetic_davis(root, seed=5, num_train=0, num_val=2, num_test_dev=1, length=3, height=HEIGHT,
                          width=WIDTH, max_objects=2)
    return root


@pytest.fixture(scope="module")
def youtube_set(tmp_path_factory):
    root = tmp_path_factory.mktemp("youtube")
    write_synthetic_youtube(root, seed=0, num_train=1, num_valid=2, length=6, height=HEIGHT, width=WIDTH,
                            max_objects=2)
    return root


def copy_of(root, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(root, target)
    return target


def run_script(module, argv):
    """main(argv) of an eval script; returns the exit message (None on success)."""
    try:
        module.main([str(a) for a in argv])
    except SystemExit as stop:
        return str(stop.code)
    return None


def no_partial_folders(folder):
    return not [p for p in folder.rglob("*") if p.name.startswith(".")]


def read_png(path):
    with Image.open(path) as image:
        return image.mode, image.size, np.array(image), np.array(image.getpalette()).reshape(-1, 3)


# ---------------------------------------------------------------- command lines
def test_published_command_lines_still_parse():
    args = eval_davis.build_parser().parse_args(
        ["--model", "saves/stcn.pth", "--davis_path", "../DAVIS/2017", "--output", "out", "--split", "testdev",
         "--top", "20", "--amp", "--mem_every", "3", "--include_last"])
    assert (args.split, args.top, args.mem_every, args.include_last, args.amp) == ("testdev", 20, 3, True, True)
    args = eval_davis.build_parser().parse_args(["--model", "m", "--output", "o", "--local_rank", "0"])
    assert args.davis_path == "../DAVIS/2017" and args.year == 2017 and args.memory == "every5"
    args = eval_youtube.build_parser().parse_args(
        ["--model", "m", "--yv_path", "../YouTube", "--output", "o", "--split", "test", "--save_scores"])
    assert args.split == "test" and args.save_scores and eval_youtube.resolve_short_side(args, {}) == 480


def test_memory_choices_come_from_the_policy_registry():
    from inference import MEMORY_POLICIES
    action = next(a for a in eval_davis.build_parser()._actions if a.dest == "memory")
    assert sorted(action.choices) == sorted(MEMORY_POLICIES)


def test_unknown_memory_option_is_rejected_before_any_work(davis_set, tmp_path, checkpoint):
    message = run_script(eval_davis, ["--model", checkpoint, "--davis_path", davis_set, "--output", tmp_path / "o",
                                      "--memory_option", "bogus=1"])
    assert "memory policy 'every5' has no option 'bogus'" in message
    assert not (tmp_path / "o").exists()


def test_amp_without_cuda_is_rejected_before_any_work(davis_set, tmp_path, checkpoint):
    message = run_script(eval_davis, ["--model", checkpoint, "--davis_path", davis_set, "--output", tmp_path / "o",
                                      "--amp", "--device", "cpu"])
    assert message == "error: --amp needs a CUDA device, but the device is cpu; on CPU use --precision bfloat16"
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flags, message", [
    (["--precision", "bfloat16", "--amp", "--device", "cpu"],
     "error: --precision bfloat16 and --amp exclude each other: bfloat16 is the CPU option, --amp is CUDA "
     "float16; choose one"),
    (["--precision", "bfloat16", "--device", "cuda"],
     "error: --precision bfloat16 runs on CPU only, but the device is cuda; pass --device cpu, or on CUDA use "
     "--amp (float16)"),
])
@pytest.mark.parametrize("script", ["davis", "youtube"])
def test_nonsensical_precision_flags_give_one_error_line_before_any_work(script, flags, message, davis_set,
                                                                         youtube_set, tmp_path):
    module, data = {"davis": (eval_davis, ["--davis_path", davis_set]),
                    "youtube": (eval_youtube, ["--yv_path", youtube_set])}[script]
    # checked before the network is loaded: the checkpoint need not exist
    assert run_script(module, ["--model", tmp_path / "missing.pth", *data, "--output", tmp_path / "o",
                               *flags]) == message
    assert not (tmp_path / "o").exists()


def test_precision_defaults_to_float32_and_accepts_only_known_values():
    args = eval_davis.build_parser().parse_args(["--model", "m", "--output", "o"])
    assert args.precision == "float32" and args.amp is False
    with pytest.raises(SystemExit):
        eval_davis.build_parser().parse_args(["--model", "m", "--output", "o", "--precision", "float16"])


def test_eval_davis_bfloat16_run_records_its_precision(davis_set, tmp_path, checkpoint):
    output = tmp_path / "out"
    assert run_script(eval_davis, ["--model", checkpoint, "--davis_path", davis_set, "--output", output,
                                   "--device", "cpu", "--precision", "bfloat16"]) is None
    config = json.loads((output / "eval_config.json").read_text())
    assert (config["precision"], config["amp"]) == ("bfloat16", False)
    assert (output / "global_results-val.csv").is_file()


# ---------------------------------------------------------------- DAVIS end to end
def test_eval_davis_writes_palette_pngs_config_and_toolkit_csvs(davis_set, tmp_path, checkpoint, capsys):
    output = tmp_path / "out"
    assert run_script(eval_davis, ["--model", checkpoint, "--davis_path", davis_set, "--output", output,
                                   "--save_scores"]) is None
    printed = capsys.readouterr().out
    assert "FPS" in printed and "J&F-Mean" in printed and "mem_every" in printed
    annotations = davis_set / "trainval" / "Annotations" / "480p"
    videos = ["val-shapes-00", "val-shapes-01"]
    for video in videos:
        names = sorted(p.name for p in (output / video).iterdir())
        assert names == [f"0000{t}.png" for t in range(3)]
        _, _, given, _ = read_png(annotations / video / "00000.png")
        for name in names:
            mode, size, labels, palette = read_png(output / video / name)
            assert mode == "P" and size == (WIDTH, HEIGHT)
            np.testing.assert_array_equal(palette, davis_palette())
            assert set(np.unique(labels)) <= set(np.unique(given))
        np.testing.assert_array_equal(read_png(output / video / "00000.png")[2], given)  # frame 0 = its mask
        scores = np.load(output / "scores" / video / "00001.npz")
        assert scores["probs"].shape == (len(np.unique(given)), HEIGHT, WIDTH)
        np.testing.assert_allclose(scores["probs"].astype(np.float32).sum(0), 1, atol=1e-2)
    global_rows = (output / "global_results-val.csv").read_text().splitlines()
    assert global_rows[0] == ",".join(GLOBAL_COLUMNS) and len(global_rows) == 2
    sequence_rows = (output / "per-sequence_results-val.csv").read_text().splitlines()
    assert sequence_rows[0] == "Sequence,J-Mean,F-Mean"
    expected = ["val-shapes-00_1", "val-shapes-00_2", "val-shapes-01_1", "val-shapes-01_2"]
    assert [row.split(",")[0] for row in sequence_rows[1:]] == expected
    config = json.loads((output / "eval_config.json").read_text())
    assert config["memory"] == "every5" and config["memory_options"]["mem_every"] == 5
    assert config["memory_options"]["top_k"] == 20 and config["split"] == "val"
    glibc = platform.libc_ver()[0] == "glibc"
    assert (config["malloc_tuning"] == "on") if glibc else config["malloc_tuning"].startswith("unavailable: ")
    assert no_partial_folders(output)

    # scripts/evaluate.py recomputes the same table from the folder
    evaluate = load_script("evaluate")
    (output / "global_results-val.csv").write_text("stale\n")
    evaluate.main(["--results", str(output), "--gt", str(davis_set)])
    assert (output / "global_results-val.csv").read_text().splitlines() == global_rows


def test_eval_davis_2016_merges_objects_and_testdev_is_not_scored(davis_set, tmp_path, checkpoint, capsys):
    root = copy_of(davis_set, tmp_path)
    (root / "trainval" / "ImageSets" / "2016" / "val.txt").write_text("val-shapes-01\n")  # its own image set
    output = tmp_path / "d16"
    assert run_script(eval_davis, ["--model", checkpoint, "--davis_path", root, "--output", output,
                                   "--year", "2016", "--mem_every", "2", "--no_malloc_tuning"]) is None
    assert not (output / "val-shapes-00").exists()
    for png in (output / "val-shapes-01").iterdir():
        assert set(np.unique(read_png(png)[2])) <= {0, 1}
    rows = (output / "per-sequence_results-val-2016.csv").read_text().splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["val-shapes-01_1"]
    assert not (output / "per-sequence_results-val.csv").exists()   # the 2017 name stays free
    config = json.loads((output / "eval_config.json").read_text())
    assert config["memory_options"]["mem_every"] == 2 and config["malloc_tuning"] == "off (--no_malloc_tuning)"

    output = tmp_path / "td"
    assert run_script(eval_davis, ["--model", checkpoint, "--davis_path", davis_set, "--output", output,
                                   "--split", "testdev"]) is None
    assert len(list((output / "testdev-shapes-00").iterdir())) == 3
    assert not (output / "global_results-testdev.csv").exists()
    assert "not scored" in capsys.readouterr().out


# ---------------------------------------------------------------- YouTubeVOS end to end
def test_eval_youtube_outputs_sparse_frames_at_original_size_and_a_zip(youtube_set, tmp_path, checkpoint):
    output = tmp_path / "yv"
    assert run_script(eval_youtube, ["--model", checkpoint, "--yv_path", youtube_set, "--output", output,
                                     "--short_side", "48"]) is None
    meta = json.loads((youtube_set / "valid" / "meta.json").read_text())["videos"]
    for video, info in meta.items():
        names = sorted(p.name for p in (output / "Annotations" / video).iterdir())
        assert names == ["00000.png", "00005.png"]  # the sparse frames only, not 00001..00004
        ids = {int(i) for i in info["objects"]}
        for name in names:
            mode, size, labels, palette = read_png(output / "Annotations" / video / name)
            assert mode == "P" and size == (WIDTH, HEIGHT)
            assert set(np.unique(labels)) - {0} <= ids
    late = {int(i): o["frames"][0] for i, o in meta["valid000shapes"]["objects"].items()}
    late_id = max(late, key=late.get)
    assert len(late) >= 2 and late[late_id] == "00005"
    assert all(b - a > 1 for a, b in zip(sorted(late), sorted(late)[1:])), "non-consecutive ids"
    first = read_png(output / "Annotations" / "valid000shapes" / "00000.png")[2]
    at_entry = read_png(output / "Annotations" / "valid000shapes" / "00005.png")[2]
    given = read_png(youtube_set / "valid" / "Annotations" / "valid000shapes" / "00005.png")[2]
    assert late_id not in first and late_id in at_entry
    inside = given == late_id
    assert (at_entry[inside] == late_id).mean() > 0.8  # the given mask survives 48p processing
    with zipfile.ZipFile(output / "valid_submission.zip") as archive:
        assert sorted(archive.namelist()) == sorted(
            f"Annotations/{v}/{n}" for v in meta for n in ("00000.png", "00005.png"))
    assert (output / "youtube_results-valid.csv").read_text().startswith("Overall,J-Seen,F-Seen,J-Unseen,F-Unseen")
    assert json.loads((output / "eval_config.json").read_text())["short_side"] == 48
    assert no_partial_folders(output)


def test_youtube_processing_size_matches_torchvision_resize():
    assert resizing.short_side_size(720, 1280, 480) == (480, 853)
    assert resizing.short_side_size(1280, 720, 480) == (853, 480)
    assert resizing.short_side_size(480, 854, 480) == (480, 854)
    assert resizing.short_side_size(64, 96, 0) == (64, 96)


# ---------------------------------------------------------------- bad inputs
def davis_args(root, output, checkpoint):
    return ["--model", checkpoint, "--davis_path", root, "--output", output]


def annotation(root, video, frame):
    return root / "trainval" / "Annotations" / "480p" / video / f"{frame}.png"


def frame(root, video, t):
    return root / "trainval" / "JPEGImages" / "480p" / video / f"0000{t}.jpg"


@pytest.mark.parametrize("breakage, expected", [
    ("missing_first_annotation", r"val-shapes-01/00000.png: first-frame annotation of video val-shapes-01 is missing"),
    ("missing_frame", r"val-shapes-01/00002.png: annotation without a frame"),
    ("annotation_size", r"val-shapes-01/00002.png: annotation is 32x48 but the frame"),
    ("foreign_rgb_annotation", r"val-shapes-01/00000.png: RGB label PNG with 1 colour\(s\) not in the palette"),
    ("video_not_on_disk", r"JPEGImages/480p/val-shapes-01: video val-shapes-01 is listed in"),
    ("not_a_checkpoint", r"junk.pth"),
])
def test_bad_davis_input_gives_one_clear_error_and_no_video_folder(breakage, expected, davis_set, tmp_path,
                                                                 checkpoint):
    root = copy_of(davis_set, tmp_path)
    model = checkpoint
    if breakage == "missing_first_annotation":
        annotation(root, "val-shapes-01", "00000").unlink()
    if breakage == "missing_frame":
        frame(root, "val-shapes-01", 2).unlink()
    if breakage == "annotation_size":
        write_label_png(annotation(root, "val-shapes-01", "00002"), np.zeros((32, 48), np.uint8))
    if breakage == "foreign_rgb_annotation":
        rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
        rgb[:10, :10] = (1, 2, 3)
        Image.fromarray(rgb).save(annotation(root, "val-shapes-01", "00000"))
    if breakage == "video_not_on_disk":
        shutil.rmtree(frame(root, "val-shapes-01", 0).parent)
    if breakage == "not_a_checkpoint":
        model = tmp_path / "junk.pth"
        model.write_bytes(b"definitely not weights")
    output = tmp_path / "out"
    message = run_script(eval_davis, davis_args(root, output, model))
    assert message is not None and message.startswith("error: ")
    assert __import__("re").search(expected, message), message
    assert not (output / "val-shapes-00").exists() and not (output / "val-shapes-01").exists()


def test_rgb_annotation_in_palette_colours_is_accepted(davis_set, tmp_path):
    from dataset.benchmark_readers import DavisReader
    root = copy_of(davis_set, tmp_path)
    path = annotation(root, "val-shapes-00", "00000")
    labels = read_png(path)[2]
    Image.fromarray(davis_palette()[labels]).save(path)  # same labels, stored as RGB
    video = DavisReader(root, split="val").video("val-shapes-00")
    np.testing.assert_array_equal(eval_davis.first_mask(video, 2017), labels)
    np.testing.assert_array_equal(video.palette, davis_palette())  # no palette in the file: DAVIS


def test_failing_video_stops_the_run_naming_it_and_leaves_no_partial_folder(davis_set, tmp_path, checkpoint):
    root = copy_of(davis_set, tmp_path)
    Image.fromarray(np.zeros((HEIGHT, WIDTH // 2, 3), np.uint8)).save(frame(root, "val-shapes-00", 1), "JPEG")
    output = tmp_path / "out"
    message = run_script(eval_davis, davis_args(root, output, checkpoint))
    assert "video val-shapes-00" in message and "00001.jpg" in message
    assert not (output / "val-shapes-00").exists() and not (output / "val-shapes-01").exists()
    assert no_partial_folders(output)


def test_youtube_meta_naming_absent_frames_is_rejected(youtube_set, tmp_path, checkpoint):
    root = copy_of(youtube_set, tmp_path)
    meta_path = root / "valid" / "meta.json"
    meta = json.loads(meta_path.read_text())
    next(iter(meta["videos"]["valid001shapes"]["objects"].values()))["frames"].append("00100")
    meta_path.write_text(json.dumps(meta))
    output = tmp_path / "out"
    message = run_script(eval_youtube, ["--model", checkpoint, "--yv_path", root, "--output", output])
    assert "meta.json: video valid001shapes" in message and "00100" in message
    assert not (output / "Annotations").exists()


def test_evaluate_script_reports_missing_results_clearly(davis_set, tmp_path):
    evaluate = load_script("evaluate")
    results = tmp_path / "results"
    shutil.copytree(davis_set / "trainval" / "Annotations" / "480p" / "val-shapes-00", results / "val-shapes-00")
    (results / "global_results-val.csv").write_text("J&F-Mean\n0.999\n")  # a stale table from an old run
    with pytest.raises(SystemExit, match=r"results/val-shapes-01: result folder of sequence val-shapes-01 is missing"):
        evaluate.main(["--results", str(results), "--gt", str(davis_set)])
    assert not (results / "global_results-val.csv").exists(), "a stale table must not survive a failed run"


def test_youtube_short_side_defaults_to_480p_unless_the_policy_resizes_itself():
    from eval_youtube import build_parser, resolve_short_side
    args = build_parser().parse_args(["--model", "m.pth", "--output", "o"])
    assert resolve_short_side(args, {}) == 480
    assert resolve_short_side(args, {"work_size": "youtube"}) == 0   # SWEM resizes frames itself
    explicit = build_parser().parse_args(["--model", "m.pth", "--output", "o", "--short_side", "360"])
    assert resolve_short_side(explicit, {"work_size": "youtube"}) == 360


# ---------------------------------------------------------------- output folders that never lie (issue 14)
def visible_names(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.slow
def test_killed_run_leaves_a_truthful_folder_and_a_rerun_completes_it(tmp_path, checkpoint, capsys):
    import signal
    import subprocess
    import sys
    import time

    from evaluation.output_dir import LOCK_NAME
    root = tmp_path / "data"
    write_synthetic_davis(root, seed=7, num_train=0, num_val=3, num_test_dev=0, length=3, height=HEIGHT,
                          width=WIDTH, max_objects=1)
    videos = [f"val-shapes-0{i}" for i in range(3)]
    output = tmp_path / "out"
    output.mkdir()
    for name in ("global_results-val.csv", "per-sequence_results-val.csv", "eval_config.json"):
        (output / name).write_text("an earlier model's result\n")
    command = [sys.executable, str(REPO / "eval_davis.py"), *map(str, davis_args(root, output, checkpoint)),
               "--device", "cpu", "--no_malloc_tuning"]
    log = tmp_path / "stderr.txt"
    with open(log, "w") as stderr:
        run = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
        deadline = time.monotonic() + 300
        while run.poll() is None and time.monotonic() < deadline and not any((output / v).is_dir() for v in videos):
            time.sleep(0.01)
        run.send_signal(signal.SIGTERM)
        try:
            run.wait(timeout=300)  # the signal is handled once the running torch operation returns
        except subprocess.TimeoutExpired:
            run.kill()
            pytest.fail(f"the run did not end after SIGTERM; its stderr:\n{log.read_text()}")
    err = log.read_text()
    assert run.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1].startswith("error: interrupted by SIGTERM;") and "Traceback" not in err
    record = json.loads((output / "eval_config.json").read_text())
    assert record["status"] == "interrupted" and 1 <= len(record["videos_written"]) < len(videos)
    assert visible_names(output) == sorted(["eval_config.json", *record["videos_written"]])  # no CSV, lock, .partial
    for video in record["videos_written"]:
        assert visible_names(output / video) == [f"0000{t}.png" for t in range(3)]

    # what a SIGKILL leaves: a half-written video folder, a temporary file and the dead process's lock
    (output / ".val-shapes-02.k1ll3d.partial").mkdir()
    (output / ".eval_config.json.x7.tmp").write_text("{")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    (output / LOCK_NAME).write_text(json.dumps({"pid": child.pid, "host": __import__("socket").gethostname()}))
    capsys.readouterr()
    assert run_script(eval_davis, [*davis_args(root, output, checkpoint), "--no_malloc_tuning"]) is None
    assert f"taking over the lock of process {child.pid}" in capsys.readouterr().err
    record = json.loads((output / "eval_config.json").read_text())
    assert record["status"] == "complete" and record["videos_written"] == videos
    assert record["derived_files"] == ["global_results-val.csv", "per-sequence_results-val.csv"]
    assert visible_names(output) == sorted(["eval_config.json", "global_results-val.csv",
                                            "per-sequence_results-val.csv", *videos])
    assert (output / "global_results-val.csv").read_text().startswith("J&F-Mean")


def test_a_rerun_that_does_not_score_removes_the_earlier_tables_and_zip(youtube_set, davis_set, tmp_path,
                                                                        checkpoint):
    output = tmp_path / "out"
    output.mkdir()
    for name in ("global_results-testdev.csv", "global_results-val.csv", "valid_submission.zip"):
        (output / name).write_text("an earlier model's result\n")
    assert run_script(eval_davis, [*davis_args(davis_set, output, checkpoint), "--split", "testdev"]) is None
    assert visible_names(output) == ["eval_config.json", "testdev-shapes-00"]

    # a YouTubeVOS run that fails on its second video keeps no old zip or table beside new masks
    root = copy_of(youtube_set, tmp_path)
    for name in ("valid_submission.zip", "youtube_results-valid.csv"):
        (output / name).write_text("an earlier model's result\n")
    broken = root / "all_frames" / "valid_all_frames" / "JPEGImages" / "valid001shapes" / "00003.jpg"
    broken.write_bytes(broken.read_bytes()[:200])  # truncated: found only when the video is decoded
    message = run_script(eval_youtube, ["--model", checkpoint, "--yv_path", root, "--output", output,
                                        "--short_side", "0"])
    assert message.startswith("error: video valid001shapes:") and "00003.jpg: not a readable image" in message
    record = json.loads((output / "eval_config.json").read_text())
    assert (record["status"], record["videos_written"]) == ("failed", ["valid000shapes"])
    assert visible_names(output) == ["Annotations", "eval_config.json", "testdev-shapes-00"]


def test_published_files_are_readable_by_collaborators(davis_set, tmp_path, checkpoint):
    import os
    import stat
    old = os.umask(0o022)
    try:
        assert run_script(eval_davis, [*davis_args(davis_set, tmp_path / "out", checkpoint), "--save_scores"]) is None
    finally:
        os.umask(old)
    for path in (tmp_path / "out").rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path


@pytest.mark.parametrize("flags, expected", [
    (["--top", "0"], "error: --top must be a positive integer, got 0"),
    (["--mem_every", "-1"], "error: --mem_every must be a positive integer, got -1"),
    (["--device", "tpu9"], "error: --device 'tpu9' is not a torch device"),
    (["--device", "cuda:7"], "error: --device cuda:7: this machine has 0 CUDA device(s)"),
    (["--memory_option", "top_k=many"], "error: --memory_option top_k='many': memory policy 'every5' expects an integer"),
    (["--memory_option", "max_frames=0"], "error: --memory every5 with options"),
    (["--memory_option", "top_k"], "error: --memory_option expects KEY=VALUE, got 'top_k'"),
    (["--memory", "swem"], "error: --memory swem with options"),
    (["--memory", "rde", "--memory_option", "layout='nope'"], "error: --memory rde with options"),
])
def test_bad_flags_fail_before_anything_is_written_and_keep_good_results(flags, expected, davis_set, tmp_path,
                                                                         checkpoint, capsys):
    import torch
    if "cuda" in flags[-1] and torch.cuda.is_available():
        pytest.skip("this machine has CUDA devices")
    output = tmp_path / "out"
    (output / "val-shapes-00").mkdir(parents=True)
    (output / "global_results-val.csv").write_text("a good table\n")
    (output / "eval_config.json").write_text("{}\n")
    before = {p: p.stat().st_mtime_ns for p in output.rglob("*")}
    message = run_script(eval_davis, [*davis_args(davis_set, output, checkpoint), *flags])
    assert message.startswith(expected), message
    assert "\n" not in message and "Traceback" not in capsys.readouterr().err
    assert {p: p.stat().st_mtime_ns for p in output.rglob("*")} == before


def test_policy_that_cannot_run_the_checkpoint_is_one_error_not_a_video_failure(davis_set, tmp_path, checkpoint):
    message = run_script(eval_davis, [*davis_args(davis_set, tmp_path / "out", checkpoint), "--memory", "swem"])
    assert f"--model {checkpoint} (STCN)" in message and "needs a SWEM network" in message
    assert "video " not in message and not (tmp_path / "out").exists()


def test_output_that_is_a_file_and_bad_short_side_are_refused(youtube_set, tmp_path, checkpoint):
    path = tmp_path / "results.txt"
    path.write_text("keep")
    message = run_script(eval_youtube, ["--model", checkpoint, "--yv_path", youtube_set, "--output", path])
    assert message == f"error: --output {path} is an existing file, not a folder" and path.read_text() == "keep"
    message = run_script(eval_youtube, ["--model", checkpoint, "--yv_path", youtube_set, "--output",
                                        tmp_path / "o", "--short_side", "-5"])
    assert message.startswith("error: --short_side must be >= 0") and not (tmp_path / "o").exists()


def test_gaps_are_warnings_naming_the_video_or_file_and_errors_with_strict(davis_set, youtube_set, tmp_path,
                                                                          checkpoint, capsys):
    root = copy_of(davis_set, tmp_path)
    frame(root, "val-shapes-01", 1).rename(frame(root, "val-shapes-01", 1).with_name("00004.jpg"))
    annotation(root, "val-shapes-01", "00001").rename(annotation(root, "val-shapes-01", "00004"))
    annotation(root, "val-shapes-00", "00002").unlink()
    output = tmp_path / "out"
    message = run_script(eval_davis, [*davis_args(root, output, checkpoint), "--strict"])
    assert message == ("error: video val-shapes-01: frame numbering jumps from 00000 to 00002 (1 frame(s) missing) "
                       "(--strict turns this warning into an error)")
    assert not output.exists()
    assert run_script(eval_davis, davis_args(root, output, checkpoint)) is None
    err = capsys.readouterr().err
    assert "warning: video val-shapes-01: frame numbering jumps from 00000 to 00002" in err
    missing = annotation(root, "val-shapes-00", "00002")
    assert f"warning: {missing}: ground truth is missing (1 of 2 videos lack annotations)" in err
    assert visible_names(output) == ["eval_config.json", "val-shapes-00", "val-shapes-01"]

    root = copy_of(youtube_set, tmp_path / "yv")
    (root / "valid" / "JPEGImages" / "valid009extra").mkdir()
    shutil.rmtree(root / "valid_gt" / "Annotations" / "valid001shapes")
    message = run_script(eval_youtube, ["--model", checkpoint, "--yv_path", root, "--output", output, "--strict",
                                        "--short_side", "0"])
    assert message.startswith("error: video valid009extra is in ") and "not in the upload zip" in message
    assert run_script(eval_youtube, ["--model", checkpoint, "--yv_path", root, "--output", output,
                                     "--short_side", "0"]) is None
    err = capsys.readouterr().err
    assert "warning: video valid009extra is in" in err and "meta.json: it is not segmented" in err
    assert f"warning: {root / 'valid_gt' / 'Annotations' / 'valid001shapes'}: ground truth is missing" in err
    assert not (output / "youtube_results-valid.csv").exists() and (output / "valid_submission.zip").exists()


def test_evaluate_script_checks_flags_before_touching_a_table(davis_set, tmp_path, capsys):
    evaluate = load_script("evaluate")
    results = tmp_path / "results"
    results.mkdir()
    (results / "global_results-val.csv").write_text("a good table\n")
    for flags, expected in ((["--decimals", "-1"], "error: --decimals must lie in 0..15, got -1"),
                            (["--split", "vall"], "error: --split 'vall' is not a davis split"),
                            (["--benchmark", "youtube", "--split", "val"], "error: --split 'val' is not a youtube")):
        assert run_script(evaluate, ["--results", results, "--gt", davis_set, *flags]).startswith(expected)
    assert run_script(evaluate, ["--results", tmp_path / "none", "--gt", davis_set]) == \
        f"error: --results {tmp_path / 'none'}: folder is missing"
    assert (results / "global_results-val.csv").read_text() == "a good table\n"
    assert "Traceback" not in capsys.readouterr().err


def test_evaluate_script_warns_about_an_incomplete_run(davis_set, tmp_path, checkpoint, capsys):
    output = tmp_path / "out"
    assert run_script(eval_davis, davis_args(davis_set, output, checkpoint)) is None
    record = json.loads((output / "eval_config.json").read_text())
    (output / "eval_config.json").write_text(json.dumps({**record, "status": "interrupted"}))
    evaluate = load_script("evaluate")
    message = run_script(evaluate, ["--results", output, "--gt", davis_set, "--strict"])
    assert message.startswith(f"error: {output / 'eval_config.json'}: the run that wrote these masks is interrupted")
    capsys.readouterr()
    assert run_script(evaluate, ["--results", output, "--gt", davis_set]) is None
    assert "warning: " in capsys.readouterr().err and (output / "global_results-val.csv").exists()


def test_command_line_mistakes_are_one_error_line(capsys):
    with pytest.raises(SystemExit) as stop:
        eval_davis.main(["--model", "m.pth", "--output", "o", "--split", "vall"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: argument --split: invalid choice: 'vall' (choose from 'val', 'testdev') (see "
        f"{eval_davis.build_parser().prog} --help)"]


def test_memory_option_values_are_checked_against_numeric_and_switch_defaults():
    import argparse

    from evaluation import runner

    def options(*flags):
        return runner.policy_options(eval_youtube.build_parser().parse_args(["--model", "m", "--output", "o", *flags]))
    assert options("--memory", "swem")["work_size"] == "youtube"  # the preset's text value passes
    chosen = options("--memory", "swem", "--memory_option", "work_size=None", "--memory_option", "init_seed=None",
                     "--memory_option", "tau=1")
    assert (chosen["work_size"], chosen["init_seed"], chosen["tau"]) == (None, None, 1)
    with pytest.raises(argparse.ArgumentTypeError, match="protect_given=1: memory policy 'lfu' expects True or False"):
        options("--memory", "lfu", "--memory_option", "protect_given=1")
    with pytest.raises(argparse.ArgumentTypeError, match="capacity=2.5: memory policy 'lfu' expects an integer"):
        options("--memory", "lfu", "--memory_option", "capacity=2.5")
