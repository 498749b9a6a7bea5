"""The README's runnable notebook example works on a CPU from a folder other than the repository."""
import os
import re
import subprocess
import sys

from conftest import REPO


def readme_python_blocks():
    return re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_runnable_notebook_example_runs_on_cpu_from_another_folder(tmp_path):
    [example] = [b for b in readme_python_blocks() if "A runnable" not in b and "build_network()" in b]
    env = {**os.environ, "PYTHONPATH": str(REPO), "CUDA_VISIBLE_DEVICES": ""}   # as after the install
    done = subprocess.run([sys.executable, "-c", example + "\nprint('example ran')"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("example ran")
