"""Models by reference (`lrtrack.references`): a user module in the working directory, an
installed entry-point plugin, bad references, nested ``model_args`` sweeps, packing.

Real subprocesses of the CLI from a folder holding the user's module (the test's cwd),
real offline W&B runs, a real SQLite store; digits, 1 epoch, tiny subsets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from clitools import create, lrtrack, show

from lrtrack import wandb_files

USER_MODULE = '''
from torch import nn

def make(input_shape, num_classes, width=16):
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, width), nn.ReLU(), nn.Linear(width, num_classes))

def with_batchnorm(input_shape, num_classes):
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, num_classes))

def wrong_output(input_shape, num_classes):
    c, h, w = input_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes + 1))

def raises(input_shape, num_classes):
    raise RuntimeError("cannot build this")
'''

TINY = ["--dataset", "digits", "--epochs", "1", "--train-size", "200", "--test-size", "100", "--device", "cpu"]


@pytest.fixture
def user_module(tmp_path: Path) -> Path:
    """``mymodels.py`` in the test's working directory (not in the lrtrack package)."""
    path = tmp_path / "mymodels.py"
    path.write_text(USER_MODULE)
    return path


def only_run_dir(wandb_dir: Path) -> Path:
    (run,) = sorted((wandb_dir / "wandb").glob("offline-run-*"))
    return run


def test_train_a_user_model_by_import_reference(user_module, offline_wandb):
    proc = lrtrack("train", *TINY, "--model", "mymodels:make", "--model-args", "{width: 24}", "--offline")
    assert proc.returncode == 0, proc.stderr
    summary = wandb_files.read_summary(only_run_dir(offline_wandb))
    assert summary["config"]["model"] == "mymodels:make"
    assert summary["config"]["model_args"] == {"width": 24}
    assert summary["summary"]["state"] == "finished"
    (artifact,) = wandb_files.artifacts(wandb_files.read_records(only_run_dir(offline_wandb)))
    assert artifact["type"] == "model" and artifact["metadata"]["config"]["model_args"] == {"width": 24}


BAD_MODELS = [
    ("mymodels:missing", "has no attribute"),
    ("notamodule:make", "cannot import 'notamodule'"),
    ("nosuchmodel", "entry-point group 'lrtrack.models'"),
    ("mymodels:raises", "cannot build this"),
    ("mymodels:wrong_output", "expected logits of shape"),
]


@pytest.mark.parametrize(("model", "message"), BAD_MODELS, ids=[m for m, _ in BAD_MODELS])
def test_bad_reference_exits_2_with_one_line_and_writes_nothing(user_module, offline_wandb, model, message):
    proc = lrtrack("train", *TINY, "--model", model, "--offline")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and model in lines[0] and "model" in lines[0] and message in lines[0], lines
    assert not (offline_wandb / "wandb").exists() or not any((offline_wandb / "wandb").iterdir())


def write_spec(path: Path, fixed: dict, parameters: dict) -> Path:
    path.write_text(json.dumps({"name": path.stem, "method": "grid", "fixed": fixed, "parameters": parameters}))
    return path


FIXED = {"dataset": "digits", "epochs": 1, "train_size": 200, "test_size": 100, "device": "cpu"}


@pytest.mark.parametrize(("fixed", "parameters", "bad"), [
    ({"model": "mymodels:make"}, {"model_args": {"parameters": {"width": {"values": [8, "wide"]}}}}, "mymodels:make"),
    ({}, {"model": {"values": ["mymodels:make", "mymodels:wrong_output"]}}, "mymodels:wrong_output"),
    ({"model": "mymodels:gone"}, {"lr": {"values": [0.1, 0.01]}}, "mymodels:gone"),
], ids=["listed-model-args", "listed-model", "fixed-model"])
def test_sweep_create_checks_every_model_before_writing(user_module, offline_wandb, tmp_path, fixed, parameters, bad):
    spec = write_spec(tmp_path / "bad.yaml", {**FIXED, **fixed}, parameters)
    store = tmp_path / "store.db"
    proc = lrtrack("sweep", "create", str(spec), "--store", f"sqlite:///{store}", "--backend", "local")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and bad in lines[0] and "model" in lines[0] and "bad.yaml" in lines[0], lines
    assert not store.exists()
    assert not (offline_wandb / "wandb").exists()


def test_sweep_of_a_user_model_with_a_nested_model_args_parameter(user_module, offline_wandb, tmp_path):
    spec = write_spec(tmp_path / "mine.yaml", {**FIXED, "model": "mymodels:make", "lr": 0.01},
                      {"model_args": {"parameters": {"width": {"values": [8, 16]}}}})
    store = f"sqlite:///{tmp_path}/store.db"
    sweep_id = create(spec, store)
    proc = lrtrack("agent", sweep_id, "--store", store, "--offline")
    assert proc.returncode == 0, proc.stderr
    description = show(sweep_id, store)
    finished = [e["config"] for e in description["runs"] if e["state"] == "finished"]
    assert sorted(finished, key=json.dumps) == [{"model_args.width": 16}, {"model_args.width": 8}]
    assert description["sweep"]["swept"] == ["model_args"]
    assert len(description["runs"]) == 2  # every point once
    names = sorted(wandb_files.read_summary(run)["name"] for run in (offline_wandb / "wandb").glob("offline-run-*"))
    assert [name.split()[-1] for name in names] == ["model_args.width=16", "model_args.width=8"]
    configs = [wandb_files.read_summary(run)["config"] for run in (offline_wandb / "wandb").glob("offline-run-*")]
    assert sorted(c["model_args"]["width"] for c in configs) == [8, 16]
    assert all(c["model"] == "mymodels:make" for c in configs)
    report = lrtrack("report", sweep_id, "--store", store)  # the nested grid is complete, not "never ran"
    assert report.returncode == 0 and "width" in report.stdout and "never ran" not in report.stdout, report.stdout


def test_packing_a_buffer_free_user_model_matches_training_alone(user_module, monkeypatch):
    from lrtrack.config import TrainConfig
    from lrtrack.pack import run_packed
    from lrtrack.train import run

    monkeypatch.syspath_prepend(str(user_module.parent))
    base = dict(dataset="digits", device="cpu", epochs=1, train_size=300, test_size=100, model="mymodels:make", model_args={"width": 12})
    configs = [TrainConfig(**base, lr=0.01, seed=0), TrainConfig(**base, lr=0.003, optimizer="sgd", seed=1)]
    said: list[str] = []
    for packed, config in zip(run_packed(configs, notify=said.append), configs):
        alone = run(config)
        assert packed.history[0]["val/loss"] == pytest.approx(alone.history[0]["val/loss"], rel=1e-4)
    assert said == []  # packed, not refused


def test_packing_refuses_a_model_with_running_statistics(user_module, monkeypatch):
    from lrtrack.config import TrainConfig
    from lrtrack.pack import run_packed
    from lrtrack.train import run

    monkeypatch.syspath_prepend(str(user_module.parent))
    base = dict(dataset="digits", device="cpu", epochs=1, train_size=300, test_size=100, model="mymodels:with_batchnorm")
    configs = [TrainConfig(**base, lr=0.01, seed=0), TrainConfig(**base, lr=0.003, seed=1)]
    said: list[str] = []
    results = run_packed(configs, notify=said.append)
    assert len(said) == 1 and "buffers" in said[0] and "running_mean" in said[0] and "one by one" in said[0]
    for result, config in zip(results, configs):  # trained one by one: exactly what run gives
        assert result.state == "finished"
        assert result.history[0]["val/loss"] == pytest.approx(run(config).history[0]["val/loss"], rel=1e-6)


def test_an_installed_plugin_is_found_by_its_entry_point_name(tmp_path):
    project = tmp_path / "plugin-src"
    (project / "tinyplug").mkdir(parents=True)
    (project / "tinyplug" / "__init__.py").write_text(textwrap.dedent('''
        from torch import nn

        def build(input_shape, num_classes, width=8):
            c, h, w = input_shape
            return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, width), nn.ReLU(), nn.Linear(width, num_classes))
    '''))
    (project / "pyproject.toml").write_text(textwrap.dedent('''
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "tinyplug"
        version = "0.1"

        [project.entry-points."lrtrack.models"]
        tiny-mlp = "tinyplug:build"
    '''))
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                          "--no-build-isolation", "--target", str(target), str(project)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    workdir = tmp_path / "elsewhere"  # not the plugin's source folder: only the installed copy is importable
    workdir.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    proc = lrtrack("train", *TINY, "--model", "tiny-mlp", "--model-args", "{width: 6}", "--no-wandb", env=env, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "run finished: val/acc" in proc.stdout
    # without the plugin on the path the name is unknown: one line, exit 2
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    missing = lrtrack("train", *TINY, "--model", "tiny-mlp", env=env, cwd=workdir)
    assert missing.returncode == 2 and "tiny-mlp" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
