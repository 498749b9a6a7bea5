"""train.py: stage defaults, lr schedule, checkpoints, resume equivalence, overfitting, 2-process DDP."""
import json
import os

import numpy as np
import pytest
import torch

from conftest import launch, load_script, one_clip_dataset, tiny_run_flags
from model import build_network, load_network
from model.checkpoint import read_checkpoint
from training.checkpoint import atomic_save, capture_rng_state, load_training_state, restore_rng_state, save_weights
from training.config import build_parser, resolve_config
from training.trainer import Trainer, lr_at, state_path, weights_path

pytestmark = pytest.mark.usefixtures("one_thread")


def config(*flags):
    return resolve_config(build_parser().parse_args([str(f) for f in flags]))


# ----------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("stage,data,batch,iterations,steps,single", [
    (0, "static", 8, 300_000, (150_000,), True),
    (1, "bl30k", 4, 500_000, (400_000,), False),
    (2, "main", 4, 300_000, (250_000,), False),
    (3, "main", 4, 150_000, (125_000,), False),
])
def test_stage_defaults_follow_the_paper(stage, data, batch, iterations, steps, single):
    cfg = config("--stage", stage)
    assert (cfg.data, cfg.batch_size, cfg.iterations, cfg.steps, cfg.single_object) == (
        data, batch, iterations, steps, single)
    assert (cfg.lr, cfg.weight_decay, cfg.gamma, cfg.optimizer) == (1e-5, 1e-7, 0.1, "adam")
    assert cfg.num_frames == 3 and cfg.max_objects == 2 and cfg.size == 384 and cfg.amp
    if data == "static":
        assert cfg.curriculum is None
    else:
        last_switch = 0.8 if data == "bl30k" else 0.9
        assert list(cfg.curriculum["values"]) == [10, 15, 20, 25, 5]
        assert list(cfg.curriculum["fractions"]) == [0.1, 0.2, 0.3, 0.4, last_switch]


def test_flags_override_defaults_and_published_flags_parse():
    cfg = config("--stage", 3, "--id", "x", "--iterations", 10, "--batch_size", 2, "--lr", 2e-5,
                 "--steps", 5, 8, "--no_amp", "--load_model", "saves/x/x_checkpoint.pth", "--local_rank", 0,
                 "--benchmark", "--load_network", "s0.pth")
    assert (cfg.iterations, cfg.batch_size, cfg.lr, cfg.steps, cfg.amp) == (10, 2, 2e-5, (5, 8), False)
    assert cfg.resume == "saves/x/x_checkpoint.pth" and cfg.cudnn_benchmark and not cfg.pretrained
    auto = config("--stage", 1, "--id", "bl", "--save_dir", "runs", "--resume")
    assert auto.resume == os.path.join("runs", "bl", "bl_checkpoint.pth")


def test_help_states_per_process_batch_and_paper_values():
    text = build_parser().format_help()
    for phrase in ("PER PROCESS", "1e-5", "1e-7", "150k", "400k", "--no_pretrained", "--no_amp", "384"):
        assert phrase in text


@pytest.mark.parametrize("flags,message", [(["--size", 40], "multiple of 16"),
                                           (["--iterations", 4, "--stop_at", 9], "--stop_at 9"),
                                           (["--lr=-1e-5"], "--lr must be a positive number"),
                                           (["--lr", "nan"], "--lr must be a positive number"),
                                           (["--num_workers=-2"], "--num_workers must be >= 0"),
                                           (["--steps", 9, 5], r"--steps must be positive iterations in increasing"),
                                           (["--steps", 0], "--steps must be positive")])
def test_bad_settings_are_refused(flags, message):
    with pytest.raises(ValueError, match=message):
        config(*flags)


@pytest.mark.parametrize("stage,iteration,lr", [
    (0, 0, 1e-5), (0, 149_999, 1e-5), (0, 150_000, 1e-6), (0, 299_999, 1e-6),
    (1, 399_999, 1e-5), (1, 400_000, 1e-6), (2, 249_999, 1e-5), (2, 250_000, 1e-6),
    (3, 124_999, 1e-5), (3, 125_000, 1e-6)])
def test_lr_schedule_at_named_iterations(stage, iteration, lr):
    cfg = config("--stage", stage)
    assert lr_at(iteration, cfg.lr, cfg.steps, cfg.gamma) == pytest.approx(lr)


def test_optimiser_schedule_matches_lr_at():
    cfg = config("--stage", 3, "--iterations", 12, "--steps", 5, 9, "--no_pretrained")
    params = [torch.nn.Parameter(torch.zeros(1))]
    trainer = Trainer(cfg)
    optimizer, scheduler = trainer._optimisation(torch.nn.ParameterList(params))
    for it in range(12):
        assert optimizer.param_groups[0]["lr"] == pytest.approx(lr_at(it, 1e-5, (5, 9), 0.1))
        optimizer.step()
        scheduler.step()


# ----------------------------------------------------------------------------- checkpoint files
def test_atomic_save_never_leaves_a_partial_file(tmp_path):
    target = tmp_path / "state.pth"
    atomic_save({"a": torch.ones(2)}, target)
    with pytest.raises(Exception):
        atomic_save({"bad": lambda: None}, target)      # cannot be pickled: fails mid-save
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pth"]


def test_rng_states_round_trip():
    state = capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3))
    torch.rand(5), np.random.rand(5)
    restore_rng_state(state)
    assert torch.equal(torch.rand(3), expected[0]) and np.array_equal(np.random.rand(3), expected[1])


def test_load_network_gives_a_stage0_file_an_orthogonal_fifth_channel(tmp_path):
    torch.manual_seed(0)
    stage0 = build_network(single_object=True)
    path = save_weights(stage0, tmp_path / "s0.pth")
    cfg = config("--stage", 3, "--no_pretrained", "--load_network", path, "--device", "cpu")
    network = Trainer(cfg)._build_network(torch.device("cpu"))
    old = stage0.state_dict()["value_encoder.conv1.weight"]
    new = network.state_dict()["value_encoder.conv1.weight"]
    assert new.shape[1] == 5 and torch.equal(new[:, :4], old)
    assert new[:, 4].abs().sum() > 0                   # not the zero padding used for evaluation
    flat = new[:, 4].flatten(1)
    gram = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    assert torch.allclose(gram, torch.eye(gram.shape[0]), atol=1e-4)
    assert torch.equal(network.state_dict()["decoder.pred.weight"], stage0.state_dict()["decoder.pred.weight"])


# ----------------------------------------------------------------------------- runs
def test_resume_equals_an_uninterrupted_run(training_data, tmp_path):
    # lr decays at iteration 3, after the interruption: the scheduler state must come back too
    flags = ["--log_every", 2, "--steps", 3, "--lr", 1e-4]
    straight = config(*tiny_run_flags(training_data, tmp_path / "a", 3, "run", 4), *flags, "--checkpoint_every", 100)
    history = Trainer(straight, record_history=True).run()
    first = config(*tiny_run_flags(training_data, tmp_path / "b", 3, "run", 4), *flags, "--stop_at", 2)
    first_history = Trainer(first, record_history=True).run()
    assert not weights_path(first, 4).exists() and state_path(first).exists()
    resumed = config(*tiny_run_flags(training_data, tmp_path / "b", 3, "run", 4), *flags, "--resume")
    second_history = Trainer(resumed, record_history=True).run()
    np.testing.assert_allclose(first_history + second_history, history, rtol=1e-5)

    a = read_checkpoint(weights_path(straight, 4))
    b = read_checkpoint(weights_path(resumed, 4))
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-7, msg=name)
    # the files load as documented: weights with model.load_network, the state weights-only
    load_network(weights_path(resumed, 4))
    state = load_training_state(state_path(resumed))
    assert state["iteration"] == 4 and state["config"]["iterations"] == 4
    load_network(state_path(resumed))
    assert (tmp_path / "b" / "run" / "config.json").exists()
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "b" / "run").iterdir())
    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(config(*tiny_run_flags(training_data, tmp_path / "b", 3, "run", 4))).run()


@pytest.mark.parametrize("mode", ["frozen", "train"])
def test_bn_switch_freezes_or_trains_batch_norm_and_is_recorded(training_data, tmp_path, mode):
    flags = tiny_run_flags(training_data, tmp_path, 3, "bn", 2) + ["--log_every", 1]
    cfg = config(*flags, *(["--bn", mode] if mode == "train" else []))
    assert cfg.batch_norm == mode     # default: frozen, the published recipe
    Trainer(cfg).run()
    saved = json.loads((tmp_path / "bn" / "config.json").read_text())
    assert saved["batch_norm"] == mode
    torch.manual_seed(cfg.seed)       # the initial network of that run
    initial = build_network(single_object=False, pretrained=False).state_dict()
    trained = read_checkpoint(weights_path(cfg, 2))
    statistics = [k for k in initial if k.endswith("running_mean")]
    moved = [k for k in statistics if not torch.equal(initial[k], trained[k])]
    # frozen: eval-mode BatchNorm never touches its statistics; train: every layer that ran updates them
    assert (moved == []) if mode == "frozen" else len(moved) > 0.5 * len(statistics)
    assert load_training_state(state_path(cfg))["config"]["batch_norm"] == mode


def test_resume_warns_when_the_bn_mode_changes(training_data, tmp_path, capsys):
    flags = tiny_run_flags(training_data, tmp_path, 3, "bnr", 2)
    Trainer(config(*flags, "--stop_at", 1)).run()
    capsys.readouterr()
    Trainer(config(*flags, "--bn", "train", "--resume")).run()
    assert "batch_norm" in capsys.readouterr().err


def test_training_overfits_one_synthetic_video(tmp_path):
    cfg = config("--stage", 3, "--id", "overfit", "--save_dir", tmp_path / "runs", "--size", 32,
                 "--batch_size", 1, "--iterations", 8, "--lr", 1e-4, "--num_workers", 0, "--no_pretrained",
                 "--no_progress", "--device", "cpu", "--log_every", 8)
    # the same augmented 3-frame clip of one video at every iteration
    history = Trainer(cfg, dataset=one_clip_dataset(tmp_path, 32), record_history=True).run()
    start, end = np.mean(history[:3]), np.mean(history[-3:])
    assert end < 0.5 * start, history


def test_every_stage_runs_and_two_processes_share_the_work(training_data, tmp_path):
    """Stage 3 (from the stage-0 file) as a 2-process gloo run through torchrun; stages 0, 1 and 2 (static
    images, then the BL30K path, each from the previous stage) in this process: their data paths differ
    from stage 3's, their DDP does not."""
    def flags(stage, init):
        run = tiny_run_flags(training_data, tmp_path, stage, f"s{stage}", 2)
        return run + (["--load_network", tmp_path / init / f"{init}_2.pth"] if init else [])

    for stage, init in [(0, None), (1, "s0"), (2, "s1")]:
        Trainer(config(*flags(stage, init))).run()
    done = launch("train.py", flags(3, "s0"), tmp_path, processes=2, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "2 process(es), 2 clips per iteration" in done.stdout
    for stage in range(4):
        saved = json.loads((tmp_path / f"s{stage}" / "config.json").read_text())
        assert saved["world_size"] == (2 if stage == 3 else 1) and saved["stage"] == stage
        network = load_network(tmp_path / f"s{stage}" / f"s{stage}_2.pth")
        assert network.value_encoder.conv1.weight.shape[1] == 5


def test_benchmark_script_reports_a_table_and_progress(capsys):
    benchmark_train = load_script("benchmark_train")
    [row] = benchmark_train.main(["--stage", "0", "--batch_size", "1", "--size", "32", "--iterations", "1",
                                  "--warmup", "1", "--device", "cpu"])
    assert row["it/s"] > 0 and row["peak MiB"] > 0 and not row["amp"]
    assert "stcn stage 0 batch 1 size 32: 100%" in capsys.readouterr().err   # the row's progress bar
    table = benchmark_train.format_table([row])
    header = [c.strip() for c in table.splitlines()[0].strip("|").split("|")]
    assert header == ["model", "stage", "batch", "size", "amp", "it/s", "clips/s", "peak MiB"]


def test_trainer_runs_any_family_through_its_recipe(training_data, tmp_path, monkeypatch):
    """RDE/SWEM plug in this way: own clip length, network, forward and losses; shared everything else."""
    from model.losses import bootstrapped_ce_terms
    from training.recipes import RECIPES, StageDefaults, TrainingRecipe

    seen = []

    class TinyRecipe(TrainingRecipe):
        name = "tiny"
        STAGES = {3: StageDefaults("main", 2, 3, (2,), num_frames=5, optimizer="adamw", lr=1e-3)}

        def build_network(self, single_object, pretrained):
            conv = torch.nn.Conv2d(3, 3, 3, padding=1)
            conv.single_object = False
            return conv

        def forward(self, network, batch, selector):
            rgb = batch["rgb"]
            seen.append(tuple(rgb.shape))
            logits = [network(rgb[:, t]) for t in range(1, rgb.shape[1])]
            return {"logits": logits, "probs": [torch.softmax(x, 1) for x in logits]}

        def losses(self, outputs, batch, iteration):
            terms, p = bootstrapped_ce_terms(outputs["logits"], batch["labels"], iteration, batch["selector"])
            return {"total_loss": sum(terms), "p": p}

    monkeypatch.setitem(RECIPES, "tiny", TinyRecipe)
    cfg = config(*tiny_run_flags(training_data, tmp_path, 3, "tiny", 3), "--model", "tiny", "--log_image_every", 1)
    assert (cfg.num_frames, cfg.optimizer, cfg.lr, cfg.steps) == (5, "adamw", 1e-3, (2,))
    history = Trainer(cfg, record_history=True).run()
    assert len(history) == 3 and seen == [(1, 5, 3, 32, 32)] * 3
    assert set(read_checkpoint(weights_path(cfg, 3))) == {"weight", "bias"}

    # a bad training image met mid-run names the file, and the progress made so far is saved
    from dataset.folders import DatasetFolderError
    from training.trainer import build_dataset

    class TruncatedThirdClip:
        def __init__(self, dataset):
            self.dataset, self.calls = dataset, 0

        def __len__(self):
            return len(self.dataset)

        def __getitem__(self, key):
            self.calls += 1
            if self.calls == 3:
                raise DatasetFolderError("v/00003.jpg: not a readable image (image file is truncated)")
            return self.dataset[key]

    cfg = config(*tiny_run_flags(training_data, tmp_path, 3, "tiny_bad", 3), "--model", "tiny")
    with pytest.raises(DatasetFolderError, match=r"^v/00003.jpg: not a readable image \(image file is truncated\); "
                                                 r"stopped at iteration 2, training state saved to .*tiny_bad_checkpoint"):
        Trainer(cfg, dataset=TruncatedThirdClip(build_dataset(cfg, TinyRecipe))).run()
    assert load_training_state(state_path(cfg))["iteration"] == 2


def test_bad_data_folder_stops_train_py_with_one_line(tmp_path, capsys):
    import train
    missing = tmp_path / "no_bl30k_here"
    with pytest.raises(SystemExit) as stop:
        train.main(["--stage", "1", "--save_dir", str(tmp_path), "--bl_root", str(missing), "--size", "32",
                    "--no_pretrained", "--device", "cpu"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: BL30K folder {missing} does not exist; expected JPEGImages/ and "
                   f"Annotations/ with one folder per video"]


def test_resume_beyond_the_iterations_is_refused_before_the_build(tmp_path, monkeypatch):
    from training.checkpoint import save_training_state
    from training.trainer import TrainingSetupError
    network = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(network.parameters())
    saved = tmp_path / "run_checkpoint.pth"
    save_training_state(saved, network, optimizer, torch.optim.lr_scheduler.MultiStepLR(optimizer, [5]),
                        torch.amp.GradScaler("cuda", enabled=False), 8)
    monkeypatch.setattr(Trainer, "_build_network", lambda *a: pytest.fail("the network must not be built"))
    cfg = config("--stage", 3, "--iterations", 6, "--resume", saved, "--save_dir", tmp_path, "--device", "cpu")
    with pytest.raises(TrainingSetupError, match=r"--resume .*run_checkpoint.pth is at iteration 8, beyond --iterations 6"):
        Trainer(cfg).run()
    cfg = config("--stage", 3, "--iterations", 20, "--stop_at", 8, "--resume", saved, "--save_dir", tmp_path,
                 "--device", "cpu")
    with pytest.raises(TrainingSetupError, match=r"--stop_at 8 is not after the saved iteration 8"):
        Trainer(cfg).run()
