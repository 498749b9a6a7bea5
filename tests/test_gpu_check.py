"""scripts/gpu_check.py: every step at a tiny size on the CPU, one Markdown table, FAIL rows on failure."""
import pytest

from conftest import load_script


@pytest.fixture(scope="module")
def gpu_check():
    return load_script("gpu_check")


def table_rows(text):
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[1:]]          # without the header


def test_quick_cpu_run_covers_every_step_and_passes(gpu_check, tmp_path, capsys):
    output = tmp_path / "report" / "gpu_check.md"
    status = gpu_check.main(["--device", "cpu", "--quick", "--output", output, "--work_dir", tmp_path / "work"])
    text = output.read_text()
    assert status == 0, text
    assert text in capsys.readouterr().out                              # printed as written
    rows = table_rows(text)
    steps = [row[0] for row in rows]
    assert {step: steps.count(step) for step in dict.fromkeys(steps)} == {
        "parity": 6, "eval": 2, "speed": 8, "long video": 2, "training": 3}
    assert all(row[3] in ("pass", "info") for row in rows)
    parity = {row[1]: row[2] for row in rows if row[0] == "parity"}
    assert "flips 0 of" in parity["swem_seed0 (2 frames), float64 (as published)"]
    assert any("bfloat16" in case for case in parity)
    assert "--precision bfloat16" in [row[1] for row in rows if row[0] == "eval"][0]
    training = [row[2] for row in rows if row[0] == "training"]
    assert "2 iterations in" in training[0] and "1 iterations in" in training[2]   # resumed at 1 of 2
    assert "torch " in text and "CPU" in text                          # environment header


def test_a_failing_step_becomes_a_fail_row_and_the_others_still_run(gpu_check):
    report = gpu_check.Report()

    def broken(report_, value):
        raise RuntimeError(f"no golden file {value}")

    def fine(report_):
        report_.add("later", "case", "ok", gpu_check.PASS)

    gpu_check.run_step(report, "parity", broken, "x.npz")
    gpu_check.run_step(report, "later", fine)
    assert report.failed
    assert report.rows[0][:4] == ("parity", "step failed", "RuntimeError: no golden file x.npz", "FAIL")
    assert report.rows[1][3] == "pass"
    assert "| parity | step failed | RuntimeError: no golden file x.npz | FAIL |" in report.markdown(["env"])
