"""Evaluation over torchrun ranks (evaluation/distributed.py): the split, the aggregate line, and
two-process gloo runs of eval_davis.py (same masks as a plain run; a failing rank stops the run)."""
import json
import os
import socket
import subprocess

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import launch
from dataset.synthetic import write_synthetic_davis
from evaluation import distributed, runner
from evaluation.gaps import GapError, report_gap
from evaluation.output_dir import LOCK_NAME
from util.distributed import DistributedContext
from util.leftovers import process_start_time

VIDEO_LENGTHS = {"val-shapes-00": 4, "val-shapes-01": 5, "val-shapes-02": 3}


def test_split_goes_longest_first_to_the_least_loaded_rank():
    lengths = [10, 80, 30, 30, 50, 20]
    shares = distributed.split_by_length(lengths, 3)
    assert shares == [[1], [4, 5], [2, 3, 0]]            # loads 80 / 70 / 70
    assert sorted(i for share in shares for i in share) == list(range(len(lengths)))
    assert distributed.split_by_length([5, 5, 5], 2) == [[0, 2], [1]]   # ties: lower rank, earlier video
    assert distributed.split_by_length([3], 4) == [[0], [], [], []]     # more ranks than videos


def test_each_rank_takes_its_share_and_a_plain_run_takes_all():
    class Video(list):
        pass
    videos = [Video(range(n)) for n in (4, 9, 1)]
    assert distributed.my_share(videos) == videos
    ranks = [DistributedContext(rank=r, world_size=2, distributed=True) for r in range(2)]
    shares = [distributed.my_share(videos, c) for c in ranks]
    assert shares == [[videos[1]], [videos[0], videos[2]]]


def test_devices_follow_the_local_rank_under_torchrun():
    context = DistributedContext(rank=3, local_rank=1, world_size=4, distributed=True)
    assert distributed.rank_device("cuda", context) == torch.device("cuda", 1)
    assert distributed.rank_device("cpu", context) == torch.device("cpu")
    assert distributed.rank_device("cuda:0", DistributedContext()) == torch.device("cuda", 0)
    with pytest.raises(Exception, match="LOCAL_RANK"):
        distributed.rank_device("cuda:0", context)


def test_summary_line_reports_aggregate_frames_per_second():
    totals = [{"frames": 30, "videos": 2, "seconds": 10.0, "peak_bytes": 2 ** 30},
              {"frames": 20, "videos": 1, "seconds": 5.0, "peak_bytes": 2 ** 29}]
    line = runner.summary_line(totals, processes=2)
    assert line == ("Processed 50 frames of 3 videos on 2 processes in 10.0 s: 5.00 FPS (aggregate), "
                    "peak GPU memory 1024 MiB per process")
    single = runner.summary_line([{"frames": 8, "videos": 2, "seconds": 4.0, "peak_bytes": None}])
    assert single == "Processed 8 frames of 2 videos in 4.0 s: 2.00 FPS"


# ------------------------------------------------------------------ two processes, gloo
@pytest.fixture(scope="module")
def setup(tmp_path_factory, random_stcn_checkpoint):
    """Three val videos of 4/5/3 frames (64x96) and a random STCN checkpoint."""
    root = tmp_path_factory.mktemp("dist")
    davis = root / "davis"
    write_synthetic_davis(davis, seed=5, num_train=0, num_val=3, num_test_dev=0, length=5, height=64, width=96,
                          max_objects=2)
    for name, length in VIDEO_LENGTHS.items():
        for kind, suffix in (("JPEGImages", "jpg"), ("Annotations", "png")):
            for t in range(length, 5):
                (davis / "trainval" / kind / "480p" / name / f"{t:05d}.{suffix}").unlink()
    return davis, random_stcn_checkpoint


def masks_of(folder):
    return {p.relative_to(folder).as_posix(): np.array(Image.open(p)) for p in sorted(folder.glob("*/*.png"))}


def test_two_ranks_write_the_masks_of_a_plain_run_and_rank_0_scores_once(setup, tmp_path):
    davis, checkpoint = setup
    flags = ["--model", checkpoint, "--davis_path", davis, "--device", "cpu"]
    done = launch("eval_davis.py", flags + ["--output", tmp_path / "two"], tmp_path, processes=2)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("Processed 12 frames of 3 videos on 2 processes") == 1, done.stdout
    assert "FPS (aggregate)" in done.stdout
    assert done.stdout.count("J&F-Mean") == 1                       # one table, from rank 0
    record = json.loads((tmp_path / "two" / "eval_config.json").read_text())
    assert record["processes"] == 2 and record["status"] == "complete"
    assert sorted(record["videos_written"]) == sorted(VIDEO_LENGTHS)   # rank 1's videos recorded by rank 0
    assert (tmp_path / "two" / "global_results-val.csv").exists()

    plain = launch("eval_davis.py", flags + ["--output", tmp_path / "one"], tmp_path)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert "Processed 12 frames of 3 videos in" in plain.stdout and "aggregate" not in plain.stdout
    two, one = masks_of(tmp_path / "two"), masks_of(tmp_path / "one")
    assert sorted(two) == sorted(one) and len(one) == sum(VIDEO_LENGTHS.values())
    for name in one:
        assert np.array_equal(two[name], one[name]), name
    assert not [p for p in (tmp_path / "two").rglob(".*")]


@pytest.mark.parametrize("failing_rank", [1, 0])   # 0: the claiming rank fails, rank 1 is stopped by SIGTERM
def test_a_failing_rank_names_its_video_and_stops_the_run(setup, tmp_path, failing_rank):
    davis, checkpoint = setup
    names = sorted(VIDEO_LENGTHS)
    shares = distributed.split_by_length([VIDEO_LENGTHS[n] for n in names], 2)
    broken = names[shares[failing_rank][0]]                          # that rank's first video
    data = tmp_path / "data"
    subprocess.run(["cp", "-r", str(davis), str(data)], check=True)
    (data / "trainval" / "JPEGImages" / "480p" / broken / "00001.jpg").write_bytes(b"not a jpeg")
    output = tmp_path / "out"
    done = launch("eval_davis.py", ["--model", checkpoint, "--davis_path", data, "--device", "cpu",
                                    "--output", output], tmp_path, processes=2)
    assert done.returncode != 0
    assert f"error: video {broken} (rank {failing_rank} of 2)" in done.stderr, done.stderr[-3000:]
    assert not (output / broken).exists()
    assert not [p for p in output.rglob(".*")]                       # no half-written folder anywhere
    assert not (output / "global_results-val.csv").exists()
    record = json.loads((output / "eval_config.json").read_text())   # rank 0 claimed the folder
    assert record["status"] in ("interrupted", "failed") and broken not in record["videos_written"]


def test_rank_0_refused_the_folder_and_the_other_rank_says_so_in_one_line(setup, tmp_path):
    """The folder is locked by a live run (this test's process): rank 0 names the holder, rank 1 says
    which rank stopped the run in one line (not the backend's traceback, nor a SIGTERM from torchrun
    cutting it off: every rank prints before any leaves)."""
    davis, checkpoint = setup
    output = tmp_path / "locked"
    output.mkdir()
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "start_time": process_start_time(os.getpid()),
              "since": "2026-12-02T14:00:00", "command": "eval_davis.py (another run)"}
    (output / LOCK_NAME).write_text(json.dumps(holder) + "\n")
    done = launch("eval_davis.py", ["--model", checkpoint, "--davis_path", davis, "--device", "cpu",
                                    "--output", output], tmp_path, processes=2)
    assert done.returncode != 0
    assert f"is in use by process {os.getpid()}" in done.stderr, done.stderr[-3000:]
    assert ("error: rank 0 of this run stopped before the output folder was ready (its error is printed "
            "above) (rank 1 of 2)") in done.stderr, done.stderr[-3000:]
    assert "[rank1]: Traceback" not in done.stderr and "interrupted" not in done.stderr
    assert sorted(p.name for p in output.iterdir()) == [LOCK_NAME]   # nothing written into the other run's folder


def test_gap_warnings_come_once_per_run_and_strict_errors_on_every_rank(monkeypatch, capsys):
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "_current", DistributedContext(rank=rank, world_size=2, distributed=True))
        report_gap("video v: frame 00003.jpg is missing", strict=False)
        assert capsys.readouterr().err == ("warning: video v: frame 00003.jpg is missing\n" if rank == 0 else "")
        with pytest.raises(GapError, match="--strict"):
            report_gap("video v: frame 00003.jpg is missing", strict=True)
