"""scripts/learning_tables.py end to end at toy size (a random STCN, 32x48 frames, a few frames): each
configuration is a real eval_davis.py process whose scores, frames/s and peak RSS land in the table.
The measured tables themselves are benchmarks (README, "Does it learn?")."""
import csv
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import REPO, load_script
from evaluation.benchmark import run_command_measured
from evaluation.runner import Timer, parse_summary, summary_line

SIZE = ["--height", "32", "--width", "48"]


@pytest.fixture(scope="module")
def tables():
    return load_script("learning_tables")


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_end_of_run_line_parses_back():
    timer = Timer(torch.device("cpu"))
    for frames in (12, 30):
        timer.run(lambda: None)
        timer.frames += frames
    parsed = parse_summary("Configuration:\n  x: 1\n" + summary_line([timer.totals()]) + "\n")
    assert (parsed["frames"], parsed["videos"]) == (42, 2) and parsed["fps"] > 0
    both = parse_summary(summary_line([timer.totals(), timer.totals()], processes=2))
    assert (both["frames"], both["videos"]) == (84, 4)
    assert parse_summary("no summary here") is None


def test_measured_command_reports_its_own_exit_code_and_peak_memory(tmp_path):
    grow = "x = bytearray(300 * 2 ** 20); print('done')"
    code, seconds, peak = run_command_measured([sys.executable, "-c", grow], tmp_path / "a.log")
    assert code == 0 and seconds > 0 and (tmp_path / "a.log").read_text() == "done\n"
    assert 300 * 2 ** 20 < peak < 600 * 2 ** 20                 # this child's peak, not the test process's
    code, _, small = run_command_measured([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "b.log")
    assert code == 3 and small < 300 * 2 ** 20


def test_memory_table_from_real_eval_runs(tables, random_stcn_checkpoint, tmp_path):
    out, work = tmp_path / "results", tmp_path / "work"
    rows = tables.main(["memory", "--model", random_stcn_checkpoint, "--output", out, "--work_dir", work, *SIZE,
                        "--sets", "long", "--long_frames", "6", "--jobs", "2", "--policies", "every5:mem_every=1",
                        "lfu:capacity=1,mem_every=1"])
    table = read_csv(out / "memory_policies.csv")
    assert [(r["set"], r["config"], r["frames"]) for r in table] == [
        ("long", "every5:mem_every=1", "6"), ("long", "lfu:capacity=1,mem_every=1", "6")]
    for row in table:
        assert 0 <= float(row["J"]) <= 1 and 0 <= float(row["F"]) <= 1
        # the toolkit's CSV, which the table reads, has 3 decimals
        assert float(row["J&F"]) == pytest.approx((float(row["J"]) + float(row["F"])) / 2, abs=1e-3)
        assert float(row["fps"]) > 0 and 100 < float(row["peak_rss_mib"]) < 8000
    # the scores are eval_davis.py's own: its CSV in the run's folder holds the same numbers
    ran = tables.read_global_scores(rows[1]["output"])
    assert ran["J&F-Mean"] == pytest.approx(float(table[1]["J&F"]))
    assert float(table[0]["agreement_with_first"]) == 1.0 and 0 < float(table[1]["agreement_with_first"]) <= 1
    text = (out / "memory_policies.md").read_text()
    assert "| long | lfu:capacity=1,mem_every=1 | 6 |" in text and "learning_tables.py memory" in text
    assert (out / "memory_policies.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # --reuse: the finished runs of the same eval commands are read back, nothing runs again
    logs = sorted(work.rglob("*.log"))
    stamps = [p.stat().st_mtime_ns for p in logs]
    again = tables.main(["memory", "--model", random_stcn_checkpoint, "--output", out, "--work_dir", work, *SIZE,
                         "--sets", "long", "--long_frames", "6", "--reuse", "--policies", "every5:mem_every=1",
                         "lfu:capacity=1,mem_every=1"])
    assert [p.stat().st_mtime_ns for p in logs] == stamps
    assert [(r["config"], r["J&F"], r["fps"], r["peak_rss_mib"]) for r in again] == [
        (r["config"], r["J&F"], r["fps"], r["peak_rss_mib"]) for r in rows]


def test_precision_table_runs_eval_davis_once_per_precision_on_the_same_videos(tables, random_stcn_checkpoint,
                                                                             tmp_path):
    args = tables.build_parser().parse_args(["precision", "--model", str(random_stcn_checkpoint), "--memory",
                                             "lfu:capacity=4"])
    commands = [tables.eval_command(args, tmp_path / "set", tmp_path / label, spec, precision)
                for label, spec, precision in tables.configurations(args)]
    flags = [dict(zip(c[2::2], c[3::2])) for c in commands]
    assert [f["--precision"] for f in flags] == ["float32", "bfloat16"]
    assert all(f["--davis_path"] == str(tmp_path / "set") and f["--device"] == "cpu" and f["--memory"] == "lfu"
               and f["--memory_option"] == "capacity=4" for f in flags)


def test_bad_arguments_stop_with_one_error_line_before_any_run(tables, random_stcn_checkpoint, tmp_path):
    def message(argv):
        with pytest.raises(SystemExit) as stop:
            tables.main([*argv, "--output", tmp_path / "o", "--work_dir", tmp_path / "w"])
        return str(stop.value.code)
    missing = tmp_path / "none.pth"
    assert message(["memory", "--model", missing]) == f"error: --model {missing}: no such file"
    assert message(["memory", "--model", random_stcn_checkpoint, "--policies", "swem"]).startswith(
        "error: swem: these tables run STCN memory policies")
    assert message(["memory", "--model", random_stcn_checkpoint, "--long_frames", "2"]).startswith(
        "error: the DAVIS protocol scores frames 1..n-2")
    assert message(["precision", "--model", random_stcn_checkpoint, "--short_set", tmp_path / "nothing"]).startswith(
        "error: --short_set")
    assert not (tmp_path / "o").exists() and not (tmp_path / "w").exists()


def test_label_agreement_and_set_description(tables, tmp_path):
    from util.palette import write_label_png
    root = tables.held_out_set(tmp_path / "set", seed=101, videos=1, frames=150, height=32, width=48,
                               max_objects=3, deform=0.1)
    info = tables.describe_set(root)
    assert (info["videos"], info["frames"], info["objects"]) == (1, 150, 2)
    assert info["returns"] >= 2            # both objects cross the edges and come back
    stamp = (root / "generated.json").stat().st_mtime_ns
    assert tables.held_out_set(tmp_path / "set", 101, 1, 150, 32, 48, 3, 0.1) == root   # generated once
    assert (root / "generated.json").stat().st_mtime_ns == stamp
    labels = np.zeros((4, 5), np.uint8)
    write_label_png(tmp_path / "a" / "v" / "00001.png", labels)
    labels[0, :2] = 1
    write_label_png(tmp_path / "b" / "v" / "00001.png", labels)
    assert tables.label_agreement(tmp_path / "b", tmp_path / "a") == pytest.approx(18 / 20)


@pytest.mark.benchmark
def test_bounded_policies_keep_peak_memory_below_every5_on_a_1000_frame_video(random_stcn_checkpoint, tmp_path):
    """The AMM paper's memory claim on our code, at the tables' CPU size (96x160; ~5-10 min, niced)."""
    out = tmp_path / "results"
    subprocess.run(["nice", "-n", "10", sys.executable, str(REPO / "scripts" / "learning_tables.py"), "memory",
                    "--model", str(random_stcn_checkpoint), "--output", str(out), "--work_dir",
                    str(tmp_path / "work"), "--sets", "long", "--jobs", "2", "--policies", "every5",
                    "lfu:capacity=2"], check=True)
    every5, lfu = read_csv(out / "memory_policies.csv")
    assert int(every5["frames"]) == int(lfu["frames"]) >= 1000
    # at the end every5 holds ~200 frames' worth of features, LFU two
    assert float(lfu["peak_rss_mib"]) < float(every5["peak_rss_mib"]) - 40
