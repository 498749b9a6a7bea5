"""Shared test fixtures: where the golden reference data lives, and synthetic weights."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
REFERENCE = SHARED / "reference"
GOLDEN = REFERENCE / "golden"

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

torch.set_num_threads(2)


def _synthetic_weights_module():
    if str(REFERENCE) not in sys.path:
        sys.path.insert(0, str(REFERENCE))
    import synthetic_weights
    return synthetic_weights


def load_shapes(name):
    """Shapes json from ../shared/reference (e.g. 'stcn', 'rde', 'swem')."""
    with open(REFERENCE / f"{name}_state_dict_shapes.json") as f:
        return json.load(f)


def synthetic_state_dict(name="stcn", seed=0, overrides=None, extra_gains=None):
    """Deterministic released-format weights, exactly as the golden files were made."""
    sw = _synthetic_weights_module()
    shapes = load_shapes(name)
    if overrides:
        shapes = {**shapes, **overrides}
    saved = dict(sw.GAINS)
    try:
        if extra_gains:
            sw.GAINS.update(extra_gains)
        return sw.make_state_dict(shapes, seed)
    finally:
        sw.GAINS.clear()
        sw.GAINS.update(saved)


def load_golden(name):
    path = GOLDEN / f"{name}.npz"
    if not path.exists():
        pytest.skip(f"golden file {path} not found (tests read ../shared/reference in place)")
    return dict(np.load(path))


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
