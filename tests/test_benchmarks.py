"""Benchmark helpers (evaluation/benchmark.py) and the two benchmark scripts on tiny settings."""
import csv
import time

import pytest

from conftest import load_script
from evaluation.benchmark import TimedIterator, current_rss_bytes, peak_rss_bytes, run_isolated, synthetic_clip
from util.cli import parse_policy_spec

pytestmark = pytest.mark.usefixtures("one_thread")


def test_policy_specs_parse_options_and_reject_malformed_ones():
    assert parse_policy_spec("every5") == ("every5", {})
    assert parse_policy_spec("lfu:capacity=4,protect_given=true") == ("lfu", {"capacity": 4, "protect_given": True})
    assert parse_policy_spec("every5:max_frames=none,x=0.5,y=abc") == (
        "every5", {"max_frames": None, "x": 0.5, "y": "abc"})
    for bad in ("", ":capacity=2", "lfu:capacity"):
        with pytest.raises(ValueError):
            parse_policy_spec(bad)


def test_timed_iterator_counts_only_the_producers_time():
    def slow():
        for i in range(3):
            time.sleep(0.02)
            yield i

    timed = TimedIterator(slow())
    start = time.perf_counter()
    for _ in timed:
        time.sleep(0.05)          # consumer time must not be counted
    total = time.perf_counter() - start
    assert timed.count == 3
    assert 0.06 <= timed.seconds < total - 0.14
    assert 0 <= timed.cpu_seconds < timed.seconds      # sleeping costs no CPU


def test_rss_readings_and_isolated_runs():
    current = current_rss_bytes()           # read first: the peak read after it can only be higher
    assert peak_rss_bytes() >= current > 10 * 2 ** 20
    assert run_isolated(parse_policy_spec, "lfu:capacity=2") == ("lfu", {"capacity": 2})
    with pytest.raises(RuntimeError, match="empty policy name"):
        run_isolated(parse_policy_spec, ":x=1")


def test_synthetic_clip_is_lazy_and_seeded():
    frames, mask = synthetic_clip(4, 32, 48, 2, seed=1)
    assert not isinstance(frames, (list, tuple))
    frames = list(frames)
    assert len(frames) == 4 and frames[0].shape == (32, 48, 3) and frames[0].dtype.name == "uint8"
    assert set(mask.ravel().tolist()) <= {0, 1, 2} and mask.any()
    again, _ = synthetic_clip(4, 32, 48, 2, seed=1)
    assert all((a == b).all() for a, b in zip(frames, again))


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_memory_benchmark_writes_tables_and_plots(tmp_path, capsys):
    bench = load_script("benchmark_memory")
    out = tmp_path / "memory"
    bench.main(["--policies", "every5:mem_every=2", "lfu:capacity=1,mem_every=2", "--lengths", "3", "7",
                "--height", "32", "--width", "48", "--objects", "1", "--sample_every", "1",
                "--growth_from", "3", "--output", str(out), "--in-process"])
    per_frame = 2 * 3                                      # 32x48 -> 2x3 features at stride 16
    runs = read_csv(out / "runs.csv")
    assert [(r["policy"], r["length"]) for r in runs] == [
        ("every5:mem_every=2", "3"), ("every5:mem_every=2", "7"), ("lfu:capacity=1,mem_every=2", "3"),
        ("lfu:capacity=1,mem_every=2", "7")]
    assert all(float(r["fps"]) > 0 and float(r["peak_rss_mib"]) > 10 for r in runs)
    # 7 frames, writes at 0, 2, 4 (6 is last): every5 keeps 3 frames, LFU with capacity 1 one frame's worth
    assert int(runs[1]["final_memory_features"]) == 3 * per_frame
    assert int(runs[3]["max_memory_features"]) == per_frame
    samples = read_csv(out / "memory.csv")
    every5 = [int(s["memory_features"]) for s in samples if s["policy"].startswith("every5") and s["length"] == "7"]
    assert every5 == [per_frame] * 2 + [2 * per_frame] * 2 + [3 * per_frame] * 3
    for name in ("memory_vs_frame.png", "rss_vs_frame.png", "fps_vs_length.png", "peak_rss_vs_length.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = (out / "summary.md").read_text()
    assert "| lfu:capacity=1,mem_every=2 | 7 |" in text and "Peak RSS change from 3 to 7 frames" in text
    captured = capsys.readouterr()
    assert text in captured.out
    # per-frame progress of a run (tqdm may skip drawing 100% of a fast run before clearing it)
    assert "lfu:capacity=1,mem_every=2, 7 frames:" in captured.err
    (out / "memory_vs_frame.png").unlink()
    bench.main(["--replot", "--output", str(out), "--growth_from", "3"])   # from the CSVs alone
    assert (out / "summary.md").read_text() == text and (out / "memory_vs_frame.png").exists()


def test_memory_plots_read_on_their_own(tmp_path):
    bench = load_script("benchmark_memory")
    policies = ["every5", "lfu", "swem:work_size=none"]
    # swem measured up to a shorter length than the others: its longest run is still drawn
    runs = [{"policy": p, "length": n, "fps": 5.0 - i, "peak_rss_mib": 900 + 10 * i, "final_memory_features": 24,
             "final_memory_frames": 2}
            for i, p in enumerate(policies) for n in ((10, 20) if p != "swem:work_size=none" else (10,))]
    samples = [{"policy": p, "length": n, "frame": t, "memory_features": 12 * (t + 1) if p == "every5" else 24,
                "rss_mib": 900 + t} for p, n in zip(policies, (20, 20, 10)) for t in range(n)]
    figs = bench.figures(runs, samples, policies, "96x160, 2 objects, seed 0; Test CPU, 2 CPUs")
    try:
        for name, fig in figs.items():
            for ax in fig.axes:
                assert "96x160, 2 objects" in ax.get_title() and "Test CPU" in ax.get_title(), name
                if ax.get_yscale() == "linear":
                    assert ax.get_ylim()[0] == 0, name          # ratios are read from these axes
                styles = [(line.get_marker(), line.get_linestyle()) for line in ax.get_lines()]
                assert len(set(styles)) == len(styles) == 3, name   # no line hides under another
        legend = [t.get_text() for t in figs["memory_vs_frame.png"].axes[0].get_legend().get_texts()]
        assert legend == ["every5 (key positions, 20 frames)", "lfu (key positions, 20 frames)",
                          "swem:work_size=none (bases per object, 10 frames)"]
        assert "over each policy's longest video" in figs["memory_vs_frame.png"].axes[0].get_title()
        text = bench.summary(runs, policies, [10, 20], "header", growth_from=10)
        assert "| swem:work_size=none | 10 | 3.00 | 920 | 24 | bases per object | 2 |" in text
        assert "| every5 | +0.0% |" in text and "| swem:work_size=none | n/a |" in text
    finally:
        import matplotlib.pyplot as plt
        for fig in figs.values():
            plt.close(fig)


def test_memory_benchmark_rejects_bad_arguments():
    bench = load_script("benchmark_memory")
    with pytest.raises(SystemExit):
        bench.parse_args(["--lengths", "0"])
    with pytest.raises(ValueError, match="expects KEY=VALUE"):
        bench.main(["--policies", "lfu:capacity", "--in-process"])


def test_inference_benchmark_prints_a_table(capsys):
    bench = load_script("benchmark_inference")
    rows = bench.main(["--policies", "every5", "lfu", "--length", "3", "--height", "32", "--width", "48",
                       "--objects", "2", "--in-process"])
    assert [r["policy"] for r in rows] == ["every5", "lfu"]
    assert all(r["frames"] == 3 and r["fps"] > 0 for r in rows)
    out = capsys.readouterr().out
    assert "| every5 | 3 | 32x48 | 2 | 1 |" in out and "| lfu | 3 | 32x48 | 2 | 1 |" in out
    assert all(r["cpu_seconds"] > 0 for r in rows)
