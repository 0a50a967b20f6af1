"""Your own model and data (`lrtrack.references`, `lrtrack.data`): models and datasets by
import reference from the working directory, torchvision classes, an installed entry-point
plugin, bad references, nested ``model_args`` sweeps of the example project, the streaming
data path against the resident one, packing.

Real subprocesses of the CLI from a folder holding the user's modules (the test's cwd),
real offline W&B runs, a real SQLite store; digits, FakeData and the MNIST subset, 1-2
epochs, tiny subsets.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import yaml
from clitools import assert_one_line_error, finished_configs, lrtrack, only_run_dir, show, write_sweep_spec
from conftest import REPO

from lrtrack import wandb_files

#: The example user project (its own residual CNN and dataset callable, README's commands).
EXAMPLE = REPO / "examples" / "own-model"

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

def no_items(train=True):
    return [1, 2, 3]
'''

TINY = ["--dataset", "digits", "--epochs", "1", "--train-size", "200", "--test-size", "100", "--device", "cpu"]


@pytest.fixture
def user_module(tmp_path: Path) -> Path:
    """``mymodels.py`` in the test's working directory (not in the lrtrack package)."""
    path = tmp_path / "mymodels.py"
    path.write_text(USER_MODULE)
    return path




def test_a_user_model_trains_on_torchvision_fakedata_through_the_streaming_path(user_module, offline_wandb):
    """A model by import reference from the cwd, on ``torchvision.datasets:FakeData`` (no ``train``
    parameter: split by lrtrack) with dataset_args; the decoded splits exceed the budget, so streamed."""
    fake = "{size: 240, image_size: [1, 8, 8], num_classes: 4}"
    proc = lrtrack("train", "--dataset", "torchvision.datasets:FakeData", "--dataset-args", fake, "--epochs", "2",
                   "--resident-budget-mb", "0.05", "--loader-workers", "1", "--device", "cpu",
                   "--model", "mymodels:make", "--model-args", "{width: 24}", "--offline")
    assert proc.returncode == 0, proc.stderr
    run_dir = only_run_dir(offline_wandb)
    summary = wandb_files.read_summary(run_dir)
    config = summary["config"]
    assert config["model"] == "mymodels:make" and config["model_args"] == {"width": 24}
    assert config["dataset"] == "torchvision.datasets:FakeData" and config["dataset_args"]["num_classes"] == 4
    assert config["data_path"] == "streaming"  # the path taken, not "auto"
    assert summary["summary"]["state"] == "finished"
    assert summary["summary"]["num_classes"] == 4 and summary["summary"]["input_shape"] == [1, 8, 8]
    records = wandb_files.read_records(run_dir)
    assert [row["epoch"] for row in wandb_files.history_rows(records)] == [1, 2]
    (artifact,) = wandb_files.artifacts(records)
    assert artifact["type"] == "model" and artifact["metadata"]["config"]["model_args"] == {"width": 24}


def test_a_torchvision_class_reads_its_files_from_the_data_dir_and_streams(data_dir):
    """``torchvision.datasets:MNIST`` called with root = the data directory (the shipped subset's
    IDX files): classes from ``dataset.classes``, trained through the streaming path."""
    from lrtrack.config import TrainConfig
    from lrtrack.train import run

    config = TrainConfig(dataset="torchvision.datasets:MNIST", data_dir=str(data_dir), data_path="streaming",
                         model="cnn-small", epochs=1, train_size=500, test_size=200, device="cpu", loader_workers=1)
    result = run(config)
    assert result.config.data_path == "streaming" and result.state == "finished"
    assert result.summary["num_classes"] == 10 and result.summary["input_shape"] == [1, 28, 28]
    assert result.history[0]["val/acc"] > 0.2  # it learned from the real images


@pytest.mark.parametrize("augment", [False, True], ids=["plain", "augment"])
def test_streaming_path_gives_the_resident_paths_metrics(augment):
    """Forced streaming (a DataLoader with a worker process) and resident on the same data and
    seed: the same batches in the same order, so the same per-epoch metrics on CPU, exactly."""
    from lrtrack.config import TrainConfig
    from lrtrack.train import run

    base = dict(dataset="digits", model="fcn", device="cpu", epochs=2, batch_size=32, train_size=400, test_size=150,
                val_split=0.2, lr=0.01, augment=augment)
    resident = run(TrainConfig(**base, data_path="resident"))
    streamed = run(TrainConfig(**base, data_path="streaming", loader_workers=1))
    assert (resident.config.data_path, streamed.config.data_path) == ("resident", "streaming")
    keys = ["train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc", "lr"]
    for ours, theirs in zip(resident.history, streamed.history, strict=True):
        assert {k: ours[k] for k in keys} == {k: theirs[k] for k in keys}


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
    assert_one_line_error(proc, model, "model", message)
    assert not (offline_wandb / "wandb").exists() or not any((offline_wandb / "wandb").iterdir())


BAD_DATA_MODULE = '''
import torch

def not_pairs(train=True):
    return [torch.zeros(1, 4, 4)] * 8

def float_labels(root, train=True):
    return [(torch.zeros(1, 4, 4), 0.5)] * 8

def raises(root, train=True):
    raise FileNotFoundError("no data.bin in " + root)
'''

BAD_DATASETS = [
    ("baddata:gone", "has no attribute"),
    ("nodatamodule:make", "cannot import 'nodatamodule'"),
    ("nosuchdataset", "entry-point group 'lrtrack.datasets'"),
    ("baddata:raises", "FileNotFoundError: no data.bin"),
    ("baddata:not_pairs", "not an (input, label) pair"),
    ("baddata:float_labels", "not an int class index"),
]


@pytest.mark.parametrize(("dataset", "message"), BAD_DATASETS, ids=[d for d, _ in BAD_DATASETS])
def test_bad_dataset_reference_exits_2_with_one_line_and_writes_nothing(tmp_path, offline_wandb, capsys, dataset,
                                                                        message):
    """The console script's own entry point, in this process (the subprocess tests above cover the
    process exit): one line naming ``dataset`` and the reference, exit 2, no W&B run."""
    from lrtrack.cli import main

    (tmp_path / "baddata.py").write_text(BAD_DATA_MODULE)
    with pytest.raises(SystemExit) as exit_:
        main(["train", *TINY, "--dataset", dataset, "--offline"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2, lines
    assert len(lines) == 1 and dataset in lines[0] and "dataset" in lines[0] and message in lines[0], lines
    assert not (offline_wandb / "wandb").exists() or not any((offline_wandb / "wandb").iterdir())


FIXED = {"dataset": "digits", "epochs": 1, "train_size": 200, "test_size": 100, "device": "cpu"}


@pytest.mark.parametrize(("fixed", "parameters", "field", "bad"), [
    ({"model": "mymodels:make"}, {"model_args": {"parameters": {"width": {"values": [8, "wide"]}}}}, "model", "mymodels:make"),
    ({}, {"model": {"values": ["mymodels:make", "mymodels:wrong_output"]}}, "model", "mymodels:wrong_output"),
    ({"model": "mymodels:gone"}, {"lr": {"values": [0.1, 0.01]}}, "model", "mymodels:gone"),
    ({}, {"dataset": {"values": ["digits", "mymodels:no_items"]}}, "dataset", "mymodels:no_items"),
], ids=["listed-model-args", "listed-model", "fixed-model", "listed-dataset"])
def test_sweep_create_checks_every_reference_before_writing(user_module, offline_wandb, tmp_path, fixed, parameters,
                                                             field, bad):
    fixed = {key: value for key, value in {**FIXED, **fixed}.items() if key not in parameters}
    spec = write_sweep_spec(tmp_path / "bad.yaml", "bad", parameters, **fixed)
    store = tmp_path / "store.db"
    proc = lrtrack("sweep", "create", str(spec), "--store", f"sqlite:///{store}", "--backend", "local")
    assert_one_line_error(proc, bad, f"{field}: ", "bad.yaml")
    assert not store.exists()
    assert not (offline_wandb / "wandb").exists()


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """The example project's modules in the test's working directory, with a small copy of its
    sweep: lr x width (nested model_args), 2 epochs, the digits below 4 at 8x8."""
    for name in ("mynet.py", "mydata.py"):
        shutil.copy(EXAMPLE / name, tmp_path / name)
    spec = yaml.safe_load((EXAMPLE / "sweep.yaml").read_text())
    spec["parameters"] = {"lr": {"values": [0.03, 0.01]}, "model_args": {"parameters": {"width": {"values": [4, 8]}}}}
    spec["fixed"].update(epochs=2, device="cpu", optimizer="sgd", dataset_args={"size": 8, "classes": 4})
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path


def test_a_sweep_of_the_example_project_runs_end_to_end_with_two_agents(example_project, offline_wandb):
    """The acceptance run: model and dataset by import reference from the cwd, a nested
    ``model_args`` parameter, ``sweep run --workers 2`` offline; every grid point once, W&B runs
    with per-epoch history and a ``model`` artifact, ``sweep show --json`` and the HTML report
    naming the nested values, chance level from the 4 classes the runs logged."""
    store = f"sqlite:///{example_project}/store.db"
    proc = lrtrack("sweep", "run", "sweep.yaml", "--workers", "2", "--offline", "--store", store)
    assert proc.returncode == 0, proc.stderr
    sweep_id = proc.stdout.strip().splitlines()[-1]
    description = show(sweep_id, store)
    points = [{"lr": lr, "model_args.width": width} for lr in (0.03, 0.01) for width in (4, 8)]
    assert finished_configs(description) == Counter(json.dumps(p, sort_keys=True) for p in points)
    assert len(description["runs"]) == 4  # every point once, no extra attempt
    run_dirs = sorted((offline_wandb / "wandb").glob("offline-run-*"))
    assert len(run_dirs) == 4
    for run_dir in run_dirs:
        summary = wandb_files.read_summary(run_dir)
        assert summary["config"]["model"] == "mynet:small_resnet" and summary["config"]["dataset"] == "mydata:digits"
        assert summary["config"]["data_path"] == "resident" and summary["summary"]["num_classes"] == 4
        assert summary["name"].split()[-1] == f"model_args.width={summary['config']['model_args']['width']}"
        records = wandb_files.read_records(run_dir)
        assert [row["epoch"] for row in wandb_files.history_rows(records)] == [1, 2]
        assert [a["type"] for a in wandb_files.artifacts(records)] == ["model"]
    html = example_project / "report.html"
    report = lrtrack("report", sweep_id, "--html", str(html), "--store", store)
    assert report.returncode == 0, report.stderr
    page = html.read_text()
    assert "model_args.width" in page and "chance 25%" in page and "never ran" not in page


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


def test_packing_refuses_streamed_data_and_trains_one_by_one(user_module, monkeypatch):
    from lrtrack.config import TrainConfig
    from lrtrack.pack import run_packed
    from lrtrack.train import run

    monkeypatch.syspath_prepend(str(user_module.parent))
    base = dict(dataset="digits", device="cpu", epochs=1, train_size=300, test_size=100, model="mymodels:make",
                resident_budget_mb=0.05, loader_workers=0)  # 400 8x8 images: 0.1 MiB decoded, over the budget
    configs = [TrainConfig(**base, lr=0.01, seed=0), TrainConfig(**base, lr=0.003, seed=1)]
    said: list[str] = []
    results = run_packed(configs, notify=said.append)
    assert len(said) == 1 and "streamed" in said[0] and "one by one" in said[0], said
    for result, config in zip(results, configs):
        assert result.config.data_path == "streaming"
        assert result.history[0]["val/loss"] == run(config).history[0]["val/loss"]  # what training alone gives


def test_an_installed_plugin_is_found_by_its_entry_point_name(tmp_path):
    project = tmp_path / "plugin-src"
    (project / "tinyplug").mkdir(parents=True)
    (project / "tinyplug" / "__init__.py").write_text(textwrap.dedent('''
        import torch
        from torch import nn

        def build(input_shape, num_classes, width=8):
            c, h, w = input_shape
            return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, width), nn.ReLU(), nn.Linear(width, num_classes))

        class Stripes:
            """Three classes of 1x6x6 images: a bright row at 0, 2 or 4."""
            classes = ["top", "middle", "bottom"]

            def __init__(self, root, train=True, n=90):
                self.root, self.n = root, n if train else 30

            def __len__(self):
                return self.n

            def __getitem__(self, i):
                image = torch.zeros(1, 6, 6)
                image[0, 2 * (i % 3)] = 1.0
                return image, i % 3
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

        [project.entry-points."lrtrack.datasets"]
        stripes = "tinyplug:Stripes"
    '''))
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                          "--no-build-isolation", "--target", str(target), str(project)],
                         capture_output=True, text=True, timeout=300)
    assert pip.returncode == 0, pip.stderr
    workdir = tmp_path / "elsewhere"  # not the plugin's source folder: only the installed copy is importable
    workdir.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")])}
    proc = lrtrack("train", "--dataset", "stripes", "--model", "tiny-mlp", "--model-args", "{width: 6}", "--lr", "0.05",
                   "--epochs", "3", "--batch-size", "10", "--device", "cpu", "--no-wandb", env=env, cwd=workdir)
    assert proc.returncode == 0, proc.stderr
    assert "run started" in proc.stdout and "run finished: val/acc" in proc.stdout, proc.stdout
    # without the plugin on the path both names are unknown: one line each, exit 2
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    missing = lrtrack("train", "--dataset", "stripes", "--model", "tiny-mlp", env=env, cwd=workdir)
    lines = missing.stderr.strip().splitlines()
    assert missing.returncode == 2 and len(lines) == 2, lines
    assert "--dataset: 'stripes'" in lines[0] and "'lrtrack.datasets'" in lines[0] and "--model: 'tiny-mlp'" in lines[1]
