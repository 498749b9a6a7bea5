"""Shared test fixtures and helpers: where the golden reference data lives, synthetic weights and
networks, random checkpoint files, generated training data, tiny train.py runs, scripts as modules and
processes (python or torchrun)."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from dataset.sampler import SampleKey
from dataset.synthetic import SyntheticVideo
from dataset.vos_dataset import VOSTrainDataset
from evaluation import golden
from model import RDE, build_network, load_network
from scripts import make_synthetic_data
from util.palette import write_label_png

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REFERENCE = SHARED / "reference"
GOLDEN = REFERENCE / "golden"

# processes the tests start (scripts, torchrun) import this checkout, not another installed one
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

# two pytest-xdist workers (-n 2) on the 2-core machine: one thread each, else four threads contend
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else 2)


def load_shapes(name):
    """Shapes json from ../shared/reference (e.g. 'stcn', 'rde', 'swem')."""
    return golden.load_shapes(name, REFERENCE)


def synthetic_state_dict(name="stcn", seed=0, overrides=None, extra_gains=None):
    """Deterministic released-format weights, exactly as the golden files were made."""
    return golden.synthetic_state_dict(name, seed, overrides=overrides, extra_gains=extra_gains,
                                       reference=REFERENCE)


def load_golden(name):
    try:
        return golden.load_golden(name, REFERENCE)
    except golden.GoldenMissing as missing:
        pytest.skip(f"{missing} (tests read ../shared/reference in place)")


@pytest.fixture(scope="session")
def stcn_seed0_state_dict():
    return synthetic_state_dict("stcn", seed=0)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors and training runs: one intra-op thread avoids OpenMP barrier stalls on a busy
    2-core machine. Use with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def net(stcn_seed0_state_dict):
    """The STCN of the seed-0 synthetic weights, loaded once per session (tests only run inference)."""
    return load_network(stcn_seed0_state_dict)


RANDOM_NETWORKS = {"stcn": build_network, "rde": RDE}


@pytest.fixture(scope="session")
def random_checkpoint(tmp_path_factory):
    """``random_checkpoint(family)``: a checkpoint file of a randomly initialised network of
    ``family`` ("stcn" or "rde", torch seed 0), written once per session, for end-to-end script tests."""
    folder = tmp_path_factory.mktemp("weights")
    paths = {}

    def checkpoint(family):
        if family not in paths:
            torch.manual_seed(0)
            paths[family] = folder / f"{family}_random.pth"
            torch.save(RANDOM_NETWORKS[family]().state_dict(), paths[family])
        return paths[family]
    return checkpoint


@pytest.fixture(scope="session")
def random_stcn_checkpoint(random_checkpoint):
    """A randomly initialised STCN (seed 0) saved as a checkpoint file, for end-to-end script tests."""
    return random_checkpoint("stcn")


_LOADED_NETWORKS = {}


@pytest.fixture
def load_each_checkpoint_once(monkeypatch):
    """The eval scripts' real loader, run once per file for the whole session (building the network is
    the slow part). Use with ``pytestmark = pytest.mark.usefixtures("load_each_checkpoint_once")``."""
    from evaluation import runner
    real = runner.load_model

    def cached(path, device):
        key = (str(path), str(device))
        if key not in _LOADED_NETWORKS:
            _LOADED_NETWORKS[key] = real(path, device)
        return _LOADED_NETWORKS[key]
    monkeypatch.setattr(runner, "load_model", cached)


# ----------------------------------------------------------------------------- scripts and processes
def load_script(name):
    """``scripts/NAME.py`` loaded as a new module object (each call runs the file again)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def launch(script, flags, cwd, processes=None, timeout=300):
    """``python script`` (processes None) or ``torchrun --nproc_per_node=processes script`` with this
    checkout first on PYTHONPATH; one thread per process either way, so both sum in the same order.
    Returns the finished process (stdout and stderr as text)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, str(REPO / script)]
    if processes:
        cmd[1:1] = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    return subprocess.run(cmd + [str(f) for f in flags], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


# ----------------------------------------------------------------------------- training
TINY_CROP = 32   # crop size of the tiny training runs (a multiple of 16)


@pytest.fixture(scope="session")
def training_data(tmp_path_factory):
    """Every part of ``make_synthetic_data.py --layout training`` (static/, BL30K/, DAVIS/, YouTube/) at
    48x64: 2 videos of 8 frames per video set, 2 images per static set or class. Made once per
    session; tests only read it."""
    root = tmp_path_factory.mktemp("training_data")
    make_synthetic_data.main(["--layout", "training", "--output", str(root), "--size", "48", "64", "--videos", "2",
                              "--frames", "8", "--images", "2"])
    return root


def tiny_run_flags(data_root, save_dir, stage, run_id, iterations):
    """train.py flags of a tiny CPU run (32px crops, batch 1, no loader workers, no ImageNet weights,
    no progress bar) reading every data set from ``data_root`` (laid out as ``training_data``)."""
    return ["--stage", stage, "--id", run_id, "--save_dir", save_dir, "--size", TINY_CROP, "--batch_size", 1,
            "--iterations", iterations, "--num_workers", 0, "--no_pretrained", "--no_progress",
            "--device", "cpu", "--static_root", data_root / "static", "--bl_root", data_root / "BL30K",
            "--davis_root", data_root / "DAVIS", "--yv_root", data_root / "YouTube"]


class RepeatedClip:
    """A one-sample dataset that returns ``clip`` for every key (overfitting runs)."""

    def __init__(self, clip):
        self.clip = clip

    def __len__(self):
        return 1

    def __getitem__(self, key):
        return self.clip


def one_clip_dataset(folder, size):
    """``RepeatedClip`` of the augmented 3-frame training clip (sample key (0, (0,), skip 5)) of a
    4-frame video of two objects (SyntheticVideo seed 11, size x size), written under ``folder``."""
    video = SyntheticVideo(seed=11, height=size, width=size, num_objects=2, length=4)
    for t in range(4):
        rgb, labels = video.frame(t)
        (folder / "JPEGImages" / "v").mkdir(parents=True, exist_ok=True)
        (folder / "Annotations" / "v").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb).save(folder / "JPEGImages" / "v" / f"{t:05d}.jpg", quality=100)
        write_label_png(folder / "Annotations" / "v" / f"{t:05d}.png", labels)
    dataset = VOSTrainDataset(folder / "JPEGImages", folder / "Annotations", size=size)
    return RepeatedClip(dataset[SampleKey(0, (0,), 5)])
