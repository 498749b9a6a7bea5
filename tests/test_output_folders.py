"""Output folders that never lie (issue 14), unit level: the lock, the run record, leftovers, permissions,
complete image decoding, meta.json checks, hidden files, the absent-id footnote, checkpoint checks.

The end-to-end behaviour of the eval scripts (kill and rerun, flags, gaps) is in test_eval_scripts.py.
"""
import json
import os
import socket
import stat
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from dataset.benchmark_readers import BenchmarkLayoutError, DavisReader, read_rgb, read_youtube_meta
from dataset.folders import DatasetFolderError, list_frames
from dataset.folders import read_rgb as read_training_image
from evaluation.davis import evaluate_sequences
from evaluation.output_dir import CONFIG_NAME, LOCK_NAME, OutputFolderError, claim_output
from evaluation.tables import format_table
from model.checkpoint import CheckpointError, extract_state_dict, read_checkpoint
from util.atomic_files import atomic_file, publish_directory
from util.interrupts import Interrupted
from util.leftovers import remove_dead_temporaries
from util.palette import write_label_png


def dead_pid():
    """The pid of a process that has ended (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_lock(folder, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_NAME).write_text(json.dumps({"host": socket.gethostname(), "since": "then",
                                                "command": "eval_davis.py", **fields}))


# ---------------------------------------------------------------- the lock
def test_a_second_run_into_a_held_folder_fails_at_once_naming_the_holder(tmp_path):
    output = tmp_path / "out"
    with claim_output(output):
        assert json.loads((output / LOCK_NAME).read_text())["pid"] == os.getpid()
        with pytest.raises(OutputFolderError, match=rf"is in use by process {os.getpid()} on {socket.gethostname()}"):
            with claim_output(output):
                pass
        assert (output / LOCK_NAME).exists(), "the failing claim must not release the holder's lock"
    assert not output.exists(), "nothing started: the folder this run created is gone again"


def test_a_dead_process_lock_is_taken_over_with_a_notice(tmp_path):
    output = tmp_path / "out"
    pid = dead_pid()
    write_lock(output, pid=pid)
    notices = []
    with claim_output(output, notice=notices.append):
        assert json.loads((output / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert len(notices) == 1 and f"taking over the lock of process {pid}" in notices[0]
    assert notices[0].startswith("notice: ")
    assert sorted(p.name for p in output.iterdir()) == [], "lock released, no temporary files"


def test_a_reused_pid_is_not_mistaken_for_the_lock_holder(tmp_path):
    output = tmp_path / "out"
    write_lock(output, pid=os.getpid(), start_time=1)  # our pid, but a different process start time
    notices = []
    with claim_output(output, notice=notices.append):
        pass
    assert notices and "no longer running" in notices[0]


def test_a_lock_from_another_host_is_never_taken_over(tmp_path):
    output = tmp_path / "out"
    write_lock(output, pid=1, host="elsewhere.example")
    with pytest.raises(OutputFolderError, match=rf"elsewhere.example.*delete {output / LOCK_NAME}"):
        with claim_output(output):
            pass
    assert (output / LOCK_NAME).exists()


def test_an_existing_file_is_not_an_output_folder(tmp_path):
    path = tmp_path / "results.txt"
    path.write_text("keep me")
    with pytest.raises(OutputFolderError, match="--output .*results.txt is an existing file"):
        with claim_output(path):
            pass
    assert path.read_text() == "keep me"


# ---------------------------------------------------------------- the run record
def earlier_run(output):
    """A folder an earlier run left: masks, tables, zip, config, and a killed run's leftovers."""
    (output / "video").mkdir(parents=True)
    write_label_png(output / "video" / "00000.png", np.zeros((4, 4), np.uint8))
    for name in ("global_results-val.csv", "per-sequence_results-val.csv", "youtube_results-valid.csv",
                 "youtube_per-object_results-valid.csv", "valid_submission.zip", CONFIG_NAME):
        (output / name).write_text("from an earlier run\n")
    (output / "scores" / ".video.x1y2.partial").mkdir(parents=True)
    (output / "video" / ".00001.png.abc.tmp").write_text("half")
    (output / "notes.txt").write_text("the user's own file")


def test_a_failure_before_start_deletes_nothing(tmp_path):
    output = tmp_path / "out"
    earlier_run(output)
    before = sorted(p.relative_to(output) for p in output.rglob("*"))
    with pytest.raises(CheckpointError):
        with claim_output(output):
            raise CheckpointError("model.pth: not a PyTorch checkpoint")  # e.g. found while loading
    assert sorted(p.relative_to(output) for p in output.rglob("*")) == before


def test_start_removes_derived_files_and_leftovers_and_the_record_follows_the_run(tmp_path):
    output = tmp_path / "out"
    earlier_run(output)
    with claim_output(output) as out:
        out.start({"model": "new.pth"})
        assert sorted(p.name for p in output.iterdir()) == [LOCK_NAME, CONFIG_NAME, "notes.txt", "scores", "video"]
        assert not list((output / "scores").iterdir()) and [p.name for p in (output / "video").iterdir()] == ["00000.png"]
        record = json.loads((output / CONFIG_NAME).read_text())
        assert (record["status"], record["videos_written"], record["model"]) == ("running", [], "new.pth")
        out.video_done("a")
        out.video_done("b")
        assert json.loads((output / CONFIG_NAME).read_text())["videos_written"] == ["a", "b"]
        out.finish(derived_files=["global_results-val.csv"])
    record = json.loads((output / CONFIG_NAME).read_text())
    assert record["status"] == "complete" and record["derived_files"] == ["global_results-val.csv"]
    assert not (output / LOCK_NAME).exists()


@pytest.mark.parametrize("error, status", [(RuntimeError("video b: boom"), "failed"),
                                           (Interrupted(15), "interrupted")])
def test_a_failed_or_interrupted_run_says_so_in_its_record(tmp_path, error, status):
    output = tmp_path / "out"
    with pytest.raises(type(error)):
        with claim_output(output) as out:
            out.start({})
            out.video_done("a")
            with publish_directory(output / "b") as partial:
                (partial / "00000.png").write_text("half")
                raise error
    record = json.loads((output / CONFIG_NAME).read_text())
    assert (record["status"], record["videos_written"]) == (status, ["a"])
    assert record["error"] == str(error)
    assert sorted(p.name for p in output.iterdir()) == [CONFIG_NAME]


def test_sigterm_inside_the_claim_raises_interrupted(tmp_path):
    import signal
    with pytest.raises(Interrupted) as stop:
        with claim_output(tmp_path / "out") as out:
            out.start({})
            os.kill(os.getpid(), signal.SIGTERM)
    assert stop.value.exit_status == 128 + signal.SIGTERM
    assert json.loads((tmp_path / "out" / CONFIG_NAME).read_text())["status"] == "interrupted"
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_signal_during_the_clean_up_of_a_failed_run_cuts_nothing_short(tmp_path, monkeypatch):
    """torchrun sends SIGTERM to every rank once one fails: a rank already on its way out with its own
    error still records it, removes its lock and reports its own error, not the signal."""
    import signal

    import evaluation.output_dir as output_dir
    remove = output_dir.remove_leftovers

    def signal_then_remove(path):
        os.kill(os.getpid(), signal.SIGTERM)
        remove(path)
    with pytest.raises(RuntimeError, match="peer stopped"):
        with claim_output(tmp_path / "out") as out:
            out.start({})
            monkeypatch.setattr(output_dir, "remove_leftovers", signal_then_remove)   # the clean-up's call
            raise RuntimeError("peer stopped")
    record = json.loads((tmp_path / "out" / CONFIG_NAME).read_text())
    assert (record["status"], record["error"]) == ("failed", "peer stopped")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [CONFIG_NAME]   # lock removed
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_a_signal_while_a_video_is_published_waits_until_it_is_recorded(tmp_path):
    import signal
    with pytest.raises(Interrupted):
        with claim_output(tmp_path / "out") as out:
            out.start({})
            record = out.video_done

            def signal_then_record(*names):  # SIGTERM between the folder's rename and its record
                os.kill(os.getpid(), signal.SIGTERM)
                record(*names)
            out.video_done = signal_then_record
            with out.publish(out.path / "v", video="v") as folder:
                (folder / "00000.png").write_text("x")
            pytest.fail("the held signal is raised once the video is published and recorded")
    record = json.loads((tmp_path / "out" / CONFIG_NAME).read_text())
    assert (record["status"], record["videos_written"]) == ("interrupted", ["v"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [CONFIG_NAME, "v"]


def test_dead_trainer_temporaries_are_removed_and_live_ones_kept(tmp_path):
    dead = tmp_path / f".s0_checkpoint.pth.tmp{dead_pid()}"
    live = tmp_path / f".s0_checkpoint.pth.tmp{os.getpid()}"
    kept = tmp_path / "s0_checkpoint.pth"
    for path in (dead, live, kept):
        path.write_bytes(b"x")
    assert remove_dead_temporaries(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, kept.name])


# ---------------------------------------------------------------- permissions
@pytest.mark.parametrize("umask, file_mode, folder_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_published_files_and_folders_follow_the_umask(tmp_path, umask, file_mode, folder_mode):
    old = os.umask(umask)
    try:
        with publish_directory(tmp_path / "video") as folder:
            write_label_png(folder / "00000.png", np.zeros((4, 4), np.uint8))
        with atomic_file(tmp_path / "table.csv") as temporary:
            temporary.write_text("a\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "video").stat().st_mode) == folder_mode
    assert stat.S_IMODE((tmp_path / "video" / "00000.png").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "table.csv").stat().st_mode) == file_mode


# ---------------------------------------------------------------- images decoded completely
def truncated_jpeg(path, size=(48, 64)):
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((*size, 3)) * 255).astype(np.uint8)).save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_a_truncated_frame_is_an_error_naming_the_file(tmp_path):
    path = truncated_jpeg(tmp_path / "00003.jpg")
    with pytest.raises(BenchmarkLayoutError, match=r"00003.jpg: not a readable image \(image file is truncated"):
        read_rgb(path)
    with pytest.raises(DatasetFolderError, match=r"00003.jpg: not a readable image"):
        read_training_image(path)


def test_a_truncated_annotation_is_an_error_naming_the_file(tmp_path):
    from util.palette import LabelImageError, read_label_png
    path = tmp_path / "00000.png"
    write_label_png(path, np.random.default_rng(0).integers(0, 3, (64, 64)).astype(np.uint8))
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(LabelImageError, match="00000.png: not a readable image"):
        read_label_png(path)


def test_a_truncated_training_image_stops_the_trainer_naming_it(tmp_path):
    from dataset.vos_dataset import VOSTrainDataset
    frames, masks = tmp_path / "JPEGImages" / "v", tmp_path / "Annotations" / "v"
    frames.mkdir(parents=True)
    masks.mkdir(parents=True)
    for t in range(3):
        Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(frames / f"0000{t}.jpg")
        write_label_png(masks / f"0000{t}.png", np.ones((32, 32), np.uint8))
    truncated_jpeg(frames / "00001.jpg", (32, 32))
    dataset = VOSTrainDataset(frames.parent, masks.parent, size=32, num_frames=3)
    with pytest.raises(DatasetFolderError, match=r"00001.jpg: not a readable image"):
        dataset[0]


# ---------------------------------------------------------------- hidden files, meta.json
def test_hidden_files_in_frame_and_annotation_folders_are_ignored(tmp_path):
    from dataset.synthetic import write_synthetic_davis
    write_synthetic_davis(tmp_path, seed=1, num_train=0, num_val=1, num_test_dev=0, length=3, height=32,
                          width=48, max_objects=1)
    frames = tmp_path / "trainval" / "JPEGImages" / "480p" / "val-shapes-00"
    annotations = tmp_path / "trainval" / "Annotations" / "480p" / "val-shapes-00"
    for folder in (frames, annotations):
        (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
        (folder / "._00000.jpg").write_bytes(b"\0\5\26\7 resource fork")
        (folder / "._00000.png").write_bytes(b"\0\5\26\7 resource fork")
    video = DavisReader(tmp_path, split="val").video("val-shapes-00")
    assert video.frame_names == ["00000", "00001", "00002"]
    assert sorted(video.annotation_paths) == ["00000", "00001", "00002"]
    assert [p.name for p in list_frames(frames)] == ["00000.jpg", "00001.jpg", "00002.jpg"]


@pytest.mark.parametrize("meta, expected", [
    ({"videos": ["a"]}, r'"videos" must map video names'),
    ({"videos": {"v1": {"objects": ["1"]}}}, r'video v1: "objects" must map object ids'),
    ({"videos": {"v1": {"objects": {"one": {"frames": ["00000"]}}}}}, r"video v1: object id 'one' is not an integer"),
    ({"videos": {"v1": {"objects": {"300": {"frames": ["00000"]}}}}}, r"video v1: object id 300 is outside 1..255"),
    ({"videos": {"v1": {"objects": {"1": {"frames": "00000"}}}}}, r'video v1 object 1: "frames" must be a list'),
])
def test_malformed_meta_json_names_the_file_and_video(tmp_path, meta, expected):
    path = tmp_path / "meta.json"
    path.write_text(json.dumps(meta))
    with pytest.raises(BenchmarkLayoutError, match=rf"meta.json: .*{expected}"):
        read_youtube_meta(path)


# ---------------------------------------------------------------- label ids in the DAVIS metric
def labels_folder(folder, maps):
    folder.mkdir(parents=True)
    paths = []
    for t, labels in enumerate(maps):
        paths.append(folder / f"0000{t}.png")
        write_label_png(paths[-1], np.array(labels, np.uint8))
    return paths


def test_non_consecutive_ids_void_and_absent_ids_follow_the_davis_rule(tmp_path):
    """Ground truth ids {1, 3} (2 absent) with a void 255 area: 3 object rows; id 2 is never held by
    either side and scores 1 (stated in the footnote); void counts as background for both sides."""
    gt = np.zeros((4, 16, 16), np.uint8)
    gt[:, 2:8, 2:8] = 1
    gt[:, 9:14, 9:14] = 3
    gt[:, 0, :] = 255
    pred = gt.copy()
    pred[pred == 255] = 0
    pred[1:, 9:14, 9:14] = 0  # object 3 missed on frames 1..3
    gt_paths = labels_folder(tmp_path / "gt", gt)
    labels_folder(tmp_path / "res", pred)
    table = evaluate_sequences([("seq", gt_paths, tmp_path / "res")], workers=1)
    rows = {row["Sequence"]: row for row in table.sequence_rows()}
    assert sorted(rows) == ["seq_1", "seq_2", "seq_3"]
    assert rows["seq_1"]["J-Mean"] == 1.0 and rows["seq_3"]["J-Mean"] == 0.0
    assert rows["seq_2"]["J-Mean"] == 1.0 and rows["seq_2"]["F-Mean"] == 1.0
    assert [o.absent_frames for o in table.objects] == [0, 2, 0]
    text = format_table(table)
    assert "* absent ids: seq_2 (2) frame(s)" in text and "scores such frames J = F = 1" in text

    pred[2, 0, 0] = 4  # a label above the highest id of frame 0 is an error naming the file
    labels_folder(tmp_path / "res4", pred)
    from evaluation import EvaluationError
    with pytest.raises(EvaluationError, match=r"res4/00002.png: predicted label 4 but frame 0 .* 3 object"):
        evaluate_sequences([("seq", gt_paths, tmp_path / "res4")], workers=1)


def test_no_footnote_when_every_object_is_present(tmp_path):
    gt = np.zeros((3, 8, 8), np.uint8)
    gt[:, 2:6, 2:6] = 1
    gt_paths = labels_folder(tmp_path / "gt", gt)
    labels_folder(tmp_path / "res", gt)
    assert "absent ids" not in format_table(evaluate_sequences([("s", gt_paths, tmp_path / "res")], workers=1))


# ---------------------------------------------------------------- checkpoints
def test_a_text_file_is_not_a_pytorch_checkpoint(tmp_path):
    path = tmp_path / "stcn.pth"
    path.write_text("<html>Google Drive - virus scan warning</html>\n")
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(path)
    assert "stcn.pth: not a PyTorch checkpoint" in str(error.value) and "pickled code" not in str(error.value)


def test_nan_or_inf_weights_fail_naming_the_first_such_tensor(tmp_path):
    state = {"a.weight": torch.ones(3), "b.weight": torch.tensor([1.0, float("nan"), float("inf")]),
             "c.weight": torch.tensor([float("inf")]), "steps": torch.tensor([3])}
    path = tmp_path / "diverged.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=r"diverged.pth: tensor b.weight holds 2 NaN/Inf value\(s\) of 3"):
        extract_state_dict(read_checkpoint(path), str(path))
