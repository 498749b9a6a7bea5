"""What can be checked of the CUDA paths without a GPU.

- Mixed precision: every memory policy (``precision="bfloat16"``) and every training recipe runs under
  CPU bfloat16 autocast
  (the dtype mixing fp16 autocast would meet on CUDA: half-precision features meeting float32 /
  float64 memory, read-outs and EM), giving finite float32 outputs.
- Half-precision overflow: the SAM's non-local sum stays finite where float16 would overflow.
- Devices: every tensor the inference and model code creates names its device (or copies one).
"""
import ast
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import synthetic_state_dict
from dataset.synthetic import SyntheticVideo
from inference import MEMORY_POLICIES, segment_video
from model import load_network
from model.rde.sam import NonLocalBlock

pytestmark = pytest.mark.usefixtures("one_thread")
REPO = Path(__file__).resolve().parents[1]
RDE_GAINS = {"mem_compress.": 0.3}   # keeps the recurrent embedding of random weights bounded


@pytest.fixture(scope="module")
def networks():
    rde = load_network(synthetic_state_dict("rde", 0, extra_gains=RDE_GAINS))
    stcn = load_network(synthetic_state_dict("stcn", 0))
    return {"every5": stcn, "lfu": stcn, "rde": rde, "swem": load_network(synthetic_state_dict("swem", 0))}


def late_object_video():
    """32 x 48, 5 frames: object 3 given at frame 0, object 7 at frame 2 (YouTubeVOS protocol)."""
    video = SyntheticVideo(seed=4, height=32, width=48, num_objects=2, length=5, object_ids=(3, 7),
                           first_frames=(0, 2))
    masks = {0: np.where(video.labels(0) == 3, 3, 0).astype(np.uint8),
             2: np.where(video.labels(2) == 7, 7, 0).astype(np.uint8)}
    return list(video.frames()), masks


@pytest.mark.parametrize("policy", sorted(MEMORY_POLICIES))
def test_every_policy_runs_under_bfloat16_autocast(networks, policy):
    frames, masks = late_object_video()
    options = {"work_size": None} if policy == "swem" else {"mem_every": 1} if policy == "rde" else {}
    options.update({"include_last": True} if policy in ("every5", "lfu") else {})
    outputs = list(segment_video(networks[policy], frames, masks, memory=policy, precision="bfloat16", **options))
    plain = list(segment_video(networks[policy], frames, masks, memory=policy, **options))
    for t, (probs, reference) in enumerate(zip(outputs, plain)):
        assert probs.dtype == np.float32 and probs.shape == (3, 32, 48)
        assert np.isfinite(probs).all(), t
        np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-4)
        # bfloat16 keeps 8 bits of mantissa: the same segmentation, not the same digits
        assert np.abs(probs - reference).mean() < 0.05, (t, np.abs(probs - reference).mean())


@pytest.mark.parametrize("model_name", ["stcn", "rde", "swem"])
def test_every_recipe_trains_a_step_under_cpu_autocast(model_name):
    from training.recipes import get_recipe
    from training.trainer import training_step
    recipe = get_recipe(model_name, stage=3)
    torch.manual_seed(0)
    network = recipe.build_network(single_object=False, pretrained=False)
    if model_name == "rde":
        network.mem_compress.zero_init_non_local()
    recipe.set_train_mode(network)
    step = recipe.training_module(network)
    frames = recipe.num_frames
    video = SyntheticVideo(seed=1, height=32, width=32, num_objects=2, length=frames)
    rgb = torch.from_numpy(np.stack([video.frame(t)[0] for t in range(frames)])).permute(0, 3, 1, 2)[None] / 255
    if model_name != "swem":   # SWEM's encoders normalise themselves
        from model import normalize_image
        rgb = normalize_image(rgb)
    labels = torch.from_numpy(np.stack([video.labels(t) for t in range(frames)])).long()[None]
    batch = {"rgb": rgb, "labels": labels, "selector": torch.ones(1, 2)}
    if recipe.sample_extras is not None:   # RDE: the perturbed first masks a dataset sample carries
        batch.update({k: v[None] for k, v in recipe.sample_extras({"labels": labels[0]}, np.random.default_rng(0)).items()})
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-5)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    decoded = []
    network.decoder.pred.register_forward_hook(lambda module, inputs, output: decoded.append(output.dtype))
    losses, outputs = training_step(recipe, step, batch, 0, optimizer, scaler, amp=True)
    assert decoded and set(decoded) == {torch.bfloat16}          # autocast was really on
    assert torch.isfinite(losses["total_loss"]) and losses["total_loss"].dtype == torch.float32
    assert all(torch.isfinite(logits).all() for logits in outputs["logits"])
    grads = [p.grad for p in network.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_non_local_sum_does_not_overflow_in_float16():
    torch.manual_seed(0)
    block = NonLocalBlock(16)
    x = 10 * torch.randn(1, 16, 2, 64, 64)
    with torch.no_grad():
        expected = block(x)                                       # |output| ~ 2e3: fits in float16
        phi, g = block.phi(x).flatten(2), block.g(x).flatten(2)
        # phi g^T sums 2048 pooled positions: ~1e5, beyond float16's 65504
        assert not torch.isfinite(phi.half() @ g.half().transpose(1, 2)).all()
        with torch.autocast("cpu", dtype=torch.float16):
            halved = block(x)
    assert torch.isfinite(halved).all()
    assert (halved.float() - expected).abs().max() <= 0.01 * expected.abs().max()


# --------------------------------------------------------------------------- devices, read statically
FACTORIES = {"zeros", "ones", "full", "empty", "arange", "tensor", "randn", "rand", "randint", "eye", "linspace"}
# (file, function) pairs whose factory calls are on the CPU by intent
CPU_BY_INTENT = {
    ("model/swem/em.py", "init_bases"),       # drawn on the generator's device, then moved to ``like``
    ("model/swem/network.py", "_register_normalization"),   # module buffers: .to(device) moves them
    ("model/checkpoint.py", "widen_value_input"),   # state dicts are read on the CPU
    ("model/encoders.py", "_load_imagenet"),      # ImageNet weights are loaded before .to(device)
}


def _factory_calls_without_device(path):
    tree = ast.parse(path.read_text())
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            name = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                    and isinstance(child.func.value, ast.Name) and child.func.value.id == "torch"
                    and child.func.attr in FACTORIES and not any(k.arg == "device" for k in child.keywords)):
                found.append((function, child.lineno))
            visit(child, name)
    visit(tree, None)
    return found


def test_tensors_created_in_inference_and_model_code_name_their_device():
    offenders = []
    for folder in ("inference", "model"):
        for path in sorted((REPO / folder).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            for function, line in _factory_calls_without_device(path):
                if (relative, function) not in CPU_BY_INTENT:
                    offenders.append(f"{relative}:{line} in {function}")
    assert not offenders, "torch factory calls without device= (they land on the CPU): " + ", ".join(offenders)


def test_the_device_check_sees_a_call_without_device(tmp_path):
    path = tmp_path / "example.py"
    path.write_text("import torch\n\ndef f(x):\n    a = torch.zeros(3, device=x.device)\n"
                    "    return torch.arange(4)\n")
    assert _factory_calls_without_device(path) == [("f", 5)]
