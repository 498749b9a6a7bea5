"""Shared test fixtures: where the golden reference data lives, and synthetic weights."""
import os
from pathlib import Path

import pytest
import torch

from evaluation import golden

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REFERENCE = SHARED / "reference"
GOLDEN = REFERENCE / "golden"

# processes the tests start (scripts, torchrun) import this checkout, not another installed one
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

torch.set_num_threads(2)


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
def random_stcn_checkpoint(tmp_path_factory):
    """A randomly initialised STCN (seed 0) saved as a checkpoint file, for end-to-end script tests."""
    from model import build_network
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "stcn_random.pth"
    torch.save(build_network().state_dict(), path)
    return path


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
