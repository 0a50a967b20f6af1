"""The five published studies: their sweep files, and quick versions of them run for real.

Each quick study (sweeps/quick/) goes through the real machinery — a local sweep in
a SQLite store, W&B's sweeps engine proposing the grid, an agent training every
config with offline W&B runs — and then through the same comparison
`lrtrack reproduce` prints, whose shape checks must all pass.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from clitools import assert_one_line_error, lrtrack, write_sweep_spec

from lrtrack import wandb_files
from lrtrack.config import TRAIN_FIELDS, load_spec
from lrtrack.store import open_store
from lrtrack.studies import STEP_RATES, STUDIES, reproduce_rows

REPO = Path(__file__).resolve().parents[1]
STUDY_FILES = sorted((REPO / "sweeps").glob("*.yaml"))
QUICK_FILES = sorted((REPO / "sweeps" / "quick").glob("*.yaml"))
#: quick file -> the full study it is a small copy of
QUICK_OF = {
    "study-a.yaml": "study-a-fashion-fcn-adam.yaml",
    "study-b.yaml": "study-b-mnist-cnn-small.yaml",
    "study-c.yaml": "study-c-mnist-cnn-adam.yaml",
    "study-d.yaml": "study-d-mnist-cnn-sgd-batch10.yaml",
    "study-e.yaml": "study-e-mnist-mlp2-schedules.yaml",
}


def grid_cells(spec) -> list[dict]:
    """Every config of a grid spec, as flat dicts of the swept values."""
    cells = [{}]
    for key, body in spec.parameters.items():
        values = body["values"] if "values" in body else [body["value"]]
        cells = [{**cell, key: value} for cell in cells for value in values]
    return cells


def in_grid(config: dict, spec) -> bool:
    return any(all(cell.get(k, spec.fixed.get(k)) == v for k, v in config.items()) for cell in grid_cells(spec))


@pytest.fixture
def one_torch_thread():
    """Tiny models train faster on one thread; on a busy 2-core machine two threads spin-waiting
    made a batch-10 CNN ~10x slower (study D: 947 s vs 95 s for 5 epochs)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run_quick_study(path: Path, store_url: str, data_dir: Path, monkeypatch):
    """Create a local sweep of ``path`` and train it here with one in-process agent (offline W&B)."""
    from lrtrack.agent.loop import Agent, AgentSettings
    from lrtrack.sweep import create_sweep

    monkeypatch.setenv("LRTRACK_DATA_DIR", str(data_dir))
    spec = load_spec(path)
    with open_store(store_url) as store:
        record = create_sweep(spec, store, "local")
        outcome = Agent(store, record.id, AgentSettings(offline=True), report=lambda line: None).run()
        study, rows = reproduce_rows(store, record.id)
        runs = store.runs(record.id)
    return outcome, study, rows, runs


# ---------------------------------------------------------------- the files


@pytest.mark.parametrize("path", STUDY_FILES + QUICK_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_study_file_validates_and_its_figures_and_checks_fit_its_grid(path):
    spec = load_spec(path)
    assert spec.method == "grid"
    assert spec.name in STUDIES, f"{spec.name}: no checks in lrtrack.studies.STUDIES"
    for expected in spec.expected:
        assert in_grid(expected.config, spec), f"{path.name}: expected config {expected.config} is not in the grid"
        for metric, value in expected.metrics.items():
            assert metric in ("train/loss", "train/acc", "val/loss", "val/acc", "test/acc", "test/loss")
            if metric.endswith("acc"):
                values = value if isinstance(value, list) else [value]
                assert all(0 <= v <= 1 for v in values), f"{path.name}: {metric} must be a fraction"
    for check in STUDIES[spec.name].checks:
        assert in_grid(check.config, spec), f"{spec.name}: check '{check.text}' is about {check.config}, not in the grid"


def test_every_study_file_says_what_was_published_and_what_is_ours():
    for path in STUDY_FILES:
        text = path.read_text()
        assert "Published" in text and "Our choices" in text, path.name
        settings = yaml.safe_load(text)["fixed"]
        assert "data_dir" not in settings, f"{path.name}: data comes from $LRTRACK_DATA_DIR, not a machine path"
        assert set(settings) <= TRAIN_FIELDS


@pytest.mark.parametrize("quick, full", sorted(QUICK_OF.items()))
def test_quick_files_keep_their_study_grid_model_and_optimizer(quick, full):
    quick_spec, full_spec = load_spec(REPO / "sweeps" / "quick" / quick), load_spec(REPO / "sweeps" / full)
    assert quick_spec.parameters == full_spec.parameters
    for key in ("dataset", "model", "optimizer", "batch_size", "val_split", "step_size", "gamma"):
        assert quick_spec.fixed.get(key) == full_spec.fixed.get(key), key
    assert (quick_spec.fixed.get("train_size") or 10**9) < (full_spec.fixed.get("train_size") or 10**9)


def test_the_study_a_file_is_the_one_the_study_script_runs():
    script = (REPO / "scripts" / "study.sh").read_text()
    assert "sweeps/study-a-fashion-fcn-adam.yaml" in script
    spec = load_spec(REPO / "sweeps" / "study-a-fashion-fcn-adam.yaml")
    assert spec.fixed["dataset"] == "fashion-mnist" and spec.fixed["epochs"] == 5
    assert [e.metrics["val/acc"] for e in spec.expected] == [0.87, 0.8658, 0.8407]


# ---------------------------------------------------------------- quick studies, end to end


@pytest.mark.parametrize("name", ["study-a.yaml", "study-b.yaml", "study-c.yaml", "study-d.yaml"])
def test_quick_study_runs_as_a_sweep_and_passes_its_shape_checks(name, tmp_path, data_dir, monkeypatch, one_torch_thread):
    outcome, study, rows, runs = run_quick_study(REPO / "sweeps" / "quick" / name, f"sqlite:///{tmp_path}/s.db",
                                                 data_dir, monkeypatch)
    assert outcome.reason == "exhausted" and outcome.runs == 3
    assert [run.state for run in runs] and all(run.state in ("finished", "diverged") for run in runs)
    assert len(rows) == 3 and study.checks
    failed = [(row.label, text) for row in rows for text, ok in row.checks if not ok]
    assert not failed
    assert sum(len(row.checks) for row in rows) == len(study.checks)


def test_reproduce_runs_quick_study_e_and_w_b_logged_the_steplr_rate_each_epoch_used(tmp_path, data_dir, offline_wandb):
    """The command end to end (its own process, so W&B writes under this test's WANDB_DIR)."""
    store = f"sqlite:///{tmp_path}/s.db"
    proc = lrtrack("reproduce", str(REPO / "sweeps" / "quick" / "study-e.yaml"), "--data-dir", str(data_dir),
                   "--store", store, env={**os.environ, "COLUMNS": "200", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "6 of 6 checked rows pass" in proc.stdout
    assert "✓ logged lr 0.05 (epochs 1-5), 0.025 (6-10), 0.0125 (11-15)" in proc.stdout
    sweep_id = proc.stdout.strip().splitlines()[-1]
    with open_store(store) as opened:
        runs = opened.runs(sweep_id)
    assert sorted((run.config["lr"], run.config["scheduler"]) for run in runs) == sorted(
        (lr, s) for lr in (0.1, 0.05) for s in ("none", "step", "cosine"))

    # The StepLR run as W&B recorded it (read back with `wandb leet inspect`), not lrtrack's bookkeeping.
    step_run = next(run for run in runs if run.config["scheduler"] == "step" and run.config["lr"] == 0.05)
    run_dir = wandb_files.find_run_dir(step_run.latest.wandb_run_id, offline_wandb)
    logged = wandb_files.history_rows(wandb_files.read_records(run_dir))
    assert [row["epoch"] for row in logged] == list(range(1, 16))
    assert [row["lr"] for row in logged] == pytest.approx([0.05] * 5 + [0.025] * 5 + [0.0125] * 5, rel=1e-9)
    assert STEP_RATES == [0.05] * 5 + [0.025] * 5 + [0.0125] * 5


# ---------------------------------------------------------------- the command


def test_reproduce_prints_the_table_and_exits_1_when_a_published_figure_is_missed(tmp_path):
    """An unknown study is held to its published accuracies within 1.5 points: 99% after one epoch
    on 8x8 digits is out of reach, so that row fails and the command exits 1."""
    expected = [{"config": {"lr": 0.01}, "metrics": {"val/acc": 0.99}, "verdict": "best"}]
    spec = write_sweep_spec(tmp_path / "custom.yaml", "custom-digits", {"lr": [0.001, 0.01]}, more={"expected": expected},
                            model="fcn", epochs=1, train_size=300)
    store = f"sqlite:///{tmp_path}/s.db"
    proc = lrtrack("reproduce", str(spec), "--store", store, env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 1, proc.stderr
    assert "measured vs published" in proc.stdout
    assert "✗ val/acc within 1.5 points of published" in proc.stdout
    assert "FAIL" in proc.stdout and "0 of 1 checked rows pass" in proc.stdout
    sweep_id = proc.stdout.strip().splitlines()[-1]

    again = lrtrack("reproduce", str(spec), "--sweep", sweep_id, "--store", store)
    assert again.returncode == 1 and again.stdout.strip().splitlines()[-1] == sweep_id


@pytest.mark.parametrize("args, message", [
    (["missing.yaml"], "missing.yaml: cannot read"),
    (["{repo}/sweeps/quick/study-b.yaml", "--data-dir", "{tmp}/empty"], "--dataset mnist: files not found"),
    (["{repo}/sweeps/quick/study-b.yaml", "--sweep", "nosuchid"], "nosuchid"),
])
def test_reproduce_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    args = [a.format(repo=REPO, tmp=tmp_path) for a in args]
    proc = lrtrack("reproduce", *args, "--store", f"sqlite:///{tmp_path}/s.db",
                   env={**os.environ, "LRTRACK_DATA_DIR": str(tmp_path / "empty")})
    assert assert_one_line_error(proc, message).startswith("error: ")
