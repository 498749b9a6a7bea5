"""The package layout is the architecture: layers import only downwards, there are no import loops,
imports sit at module top, and nothing edits ``sys.path``.

Layers, bottom to top: ``util`` (leaf helpers) < ``model`` < ``dataset`` and ``inference`` (side by
side) < ``training`` < ``evaluation`` < entry points (``train.py``, ``eval_*.py``, ``scripts/``).
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import evaluation
import inference
import model
import model.losses
from conftest import REPO

PACKAGES = ("util", "model", "dataset", "inference", "training", "evaluation", "scripts")
ENTRY_POINTS = ("train", "eval_davis", "eval_youtube", "eval_generic")
# what each package may import from the project (besides itself)
ALLOWED = {
    "util": set(),
    "model": {"util"},
    "dataset": {"util", "model.normalization"},
    "inference": {"util", "model"},
    "training": {"util", "model", "dataset"},
    "evaluation": {"util", "model", "dataset", "inference"},
}
FAMILIES = ("model.stcn", "model.rde", "model.swem")
# a family may build on these other families (RDE extends STCN's network; SWEM reuses its value step)
FAMILY_BASES = {"model.rde": {"model.stcn"}, "model.swem": {"model.stcn"}, "model.stcn": set()}
# third-party modules that may be imported inside a function: optional and heavy, needed by one feature
LAZY_THIRD_PARTY = ("matplotlib", "torch.utils.tensorboard")


def project_files():
    for path in sorted(REPO.rglob("*.py")):
        rel = path.relative_to(REPO)
        if rel.parts[0] in PACKAGES or (len(rel.parts) == 1 and rel.stem in ENTRY_POINTS):
            yield rel


def module_name(rel):
    parts = list(rel.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_project(name):
    return name.split(".")[0] in PACKAGES + ENTRY_POINTS


def imports(rel):
    """[(imported module, line, inside a function)] of a file; ``from pkg import name`` counts as
    ``pkg.name`` when that is a module."""
    tree = ast.parse((REPO / rel).read_text())
    found = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if isinstance(child, ast.Import):
                found.extend((alias.name, child.lineno, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                assert child.level == 0, f"{rel}:{child.lineno}: relative import (use the absolute name)"
                for alias in child.names:
                    candidate = f"{child.module}.{alias.name}"
                    as_module = (REPO / Path(*candidate.split("."))).with_suffix(".py").exists() or \
                        (REPO / Path(*candidate.split(".")) / "__init__.py").exists()
                    found.append((candidate if as_module else child.module, child.lineno, in_function))
            visit(child, nested)
    visit(tree, False)
    return found


GRAPH = {module_name(rel): imports(rel) for rel in project_files()}


def within(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def test_the_tree_has_the_documented_packages():
    for package in ("model", "model/stcn", "model/rde", "model/swem", "inference", "dataset", "training",
                    "training/recipes", "evaluation", "util", "scripts"):
        assert (REPO / package / "__init__.py").exists(), package
    assert len(GRAPH) > 80


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_downwards(package):
    wrong = []
    for module, found in GRAPH.items():
        if not within(module, package):
            continue
        for name, line, _ in found:
            if is_project(name) and not within(name, package) and \
                    not any(within(name, allowed) for allowed in ALLOWED[package]):
                wrong.append(f"{module}:{line} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_shared_model_parts_do_not_import_families_and_families_only_their_bases():
    wrong = []
    for module, found in GRAPH.items():
        if not within(module, "model") or module == "model":
            continue
        family = next((f for f in FAMILIES if within(module, f)), None)
        for name, line, _ in found:
            target = next((f for f in FAMILIES if within(name, f)), None)
            if target is None or target == family:
                continue
            if family is None or target not in FAMILY_BASES[family]:
                wrong.append(f"{module}:{line} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_no_import_loops():
    """Module-level imports between project modules form no cycle (a package's __init__ re-exporting
    its own submodules is not an edge back to it)."""
    edges = {module: {name for name, _, inner in found if is_project(name) and not inner
                      and not (module and within(name, module))}
             for module, found in GRAPH.items()}

    def resolve(name):   # an imported name -> the known module it is, or the closest package above
        while name and name not in edges:
            name = name.rpartition(".")[0]
        return name

    state, stack = {}, []

    def dfs(module):
        state[module] = "open"
        stack.append(module)
        for name in edges[module]:
            target = resolve(name)
            if not target or target == module:
                continue
            if state.get(target) == "open":
                cycle = stack[stack.index(target):] + [target]
                raise AssertionError("import loop: " + " -> ".join(cycle))
            if target not in state:
                dfs(target)
        stack.pop()
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            dfs(module)


def test_imports_sit_at_module_top():
    inner = [f"{module}:{line} imports {name} inside a function" for module, found in GRAPH.items()
             for name, line, in_function in found
             if in_function and not name.startswith(LAZY_THIRD_PARTY)]
    assert not inner, "\n".join(inner)


def test_nothing_edits_sys_path():
    edits = [str(rel) for rel in project_files() if "sys.path" in (REPO / rel).read_text()]
    assert not edits, edits


def test_public_names_stay_importable():
    for module, names in ((model, ("load_network", "build_network", "train_forward", "CheckpointError")),
                          (model.losses, ("bootstrapped_ce",)),
                          (inference, ("segment_video", "InferenceCore", "MEMORY_POLICIES")),
                          (evaluation, ("evaluate_davis",))):
        for name in names:
            assert callable(getattr(module, name)) or isinstance(getattr(module, name), dict), (module, name)
    assert set(inference.MEMORY_POLICIES) >= {"every5", "lfu", "rde", "swem"}


@pytest.mark.parametrize("command", [["scripts/make_synthetic_data.py"], ["-m", "scripts.make_synthetic_data"]])
def test_scripts_run_as_files_and_as_modules_from_any_folder(command, tmp_path):
    if command[0] != "-m":
        command = [str(REPO / command[0])]
    done = subprocess.run([sys.executable, *command, "--layout", "davis", "--output", str(tmp_path / "set"),
                           "--val", "1", "--train", "1", "--frames", "2", "--height", "32", "--width", "48"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(list((tmp_path / "set" / "trainval" / "Annotations" / "480p").iterdir())) == 2
