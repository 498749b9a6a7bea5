"""scripts/make_checkpoint.py: an offline checkpoint file per family that loads as that family."""
import pytest
import torch

from model import load_network
from scripts import make_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("family,keys_of", [("stcn", "key_proj."), ("rde", "mem_compress."), ("swem", "swem_core.")])
def test_each_family_gets_a_loadable_seeded_file(family, keys_of, tmp_path, capsys):
    path = tmp_path / f"random_{family}.pth"
    make_checkpoint.main(["--model", family, "--output", str(path), "--seed", "3"])
    state = torch.load(path, weights_only=True)
    assert any(k.startswith(keys_of) for k in state)
    network = load_network(path)
    assert f"it loads as {type(network).__name__}" in capsys.readouterr().out
