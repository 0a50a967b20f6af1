"""Sweep files as W&B users write them, and every mistake of a file reported at once."""

from __future__ import annotations

import pytest
from clitools import assert_one_line_error, lrtrack, write_sweep_spec

from lrtrack.config import load_spec
from lrtrack.errors import UserError
from lrtrack.metrics import SWEEP_METRICS
from lrtrack.sweep import planned_runs

#: The sweep file of issue 18, in W&B's documented form.
WANDB_FORM = """\
program: train.py
method: grid
metric: {name: val/acc, goal: maximize}
parameters:
  lr: {values: [0.1, 0.01]}
  dataset: {value: digits}
  epochs: {value: 1}
"""

#: Every other top-level key W&B documents for a sweep file.
WANDB_FULL = """\
program: train.py
command:
  - ${env}
  - python
  - ${program}
  - ${args}
entity: my-team
project: lr-study
description: learning rates on digits
method: random
run_cap: 4
early_terminate: {type: hyperband, min_iter: 1, eta: 2}
metric: {name: val/loss, goal: minimize}
parameters:
  lr: {distribution: log_uniform_values, min: 0.0001, max: 0.1}
  dataset: {value: digits}
  epochs: {value: 1}
"""


def problems_of(tmp_path, body: str) -> list[str]:
    path = tmp_path / "spec.yaml"
    path.write_text(body)
    with pytest.raises(UserError) as err:
        load_spec(path)
    assert all(line.startswith(f"{path}: ") for line in err.value.problems)
    return [line.removeprefix(f"{path}: ") for line in err.value.problems]


def test_a_wandb_form_file_loads_as_is_named_after_its_file(tmp_path):
    path = tmp_path / "lr-digits.yaml"
    path.write_text(WANDB_FORM)
    spec = load_spec(path)
    assert spec.name == "lr-digits" and spec.program == "train.py"
    assert spec.to_wandb()["program"] == "train.py"  # handed to W&B's controller with the rest
    assert planned_runs(spec) == 2


def test_command_entity_project_description_run_cap_are_kept_for_wandb(tmp_path):
    from sweeps import schema_violations_from_proposed_config

    path = tmp_path / "full.yaml"
    path.write_text(WANDB_FULL)
    spec = load_spec(path)
    config = spec.to_wandb()
    assert config["command"] == ["${env}", "python", "${program}", "${args}"]
    assert (config["entity"], config["project"], config["description"], config["run_cap"]) == (
        "my-team", "lr-study", "learning rates on digits", 4)
    assert (spec.entity, spec.project) == ("my-team", "lr-study")
    assert not list(schema_violations_from_proposed_config(config))
    assert planned_runs(spec) == 4


def test_five_independent_mistakes_are_reported_in_one_go(tmp_path):
    problems = problems_of(tmp_path, """\
method: random
run_caps: 5
parameters:
  learning-rate: {values: [0.1, 0.01]}
  optimizer: {values: [adam, adamm]}
  momentum: {distribution: uniform, min: 0.1}
fixed: {dataset: digits, batch_size: 0}
""")
    assert len(problems) == 5, problems
    assert problems[0].startswith("run_caps: unknown key; did you mean run_cap?")
    assert "parameters.learning-rate: unknown setting (not a TrainConfig field); did you mean lr?" in problems
    assert "fixed.batch_size: Input should be greater than or equal to 1" in problems
    assert any(p.startswith("parameters.optimizer: Input should be 'sgd', 'adam'") for p in problems)
    # W&B's own schema judges the distribution (max is missing)
    assert any(p.startswith("parameters.momentum: W&B sweep schema:") for p in problems)


def test_a_metric_lrtrack_does_not_log_is_refused_naming_the_loggable_ones(tmp_path):
    (line,) = problems_of(tmp_path, "metric: {name: val/accc}\nparameters:\n  lr: {values: [0.1]}\n")
    assert line.startswith("metric.name: 'val/accc' is not a metric lrtrack logs; did you mean val/acc?")
    assert all(key in line for key in SWEEP_METRICS)


@pytest.mark.parametrize("name, suggestion", [
    ("learning_rate", "lr"), ("learning-rate", "lr"), ("batch-size", "batch_size"), ("optimiser", "optimizer"),
    ("num_epochs", "epochs"), ("weight-decay", "weight_decay"),
])
def test_known_spellings_fail_with_a_suggestion_never_an_alias(tmp_path, name, suggestion):
    (line,) = problems_of(tmp_path, f"parameters:\n  {name}: {{values: [1]}}\n")
    assert line == f"parameters.{name}: unknown setting (not a TrainConfig field); did you mean {suggestion}?"


def test_learning_rate_exits_2_with_one_line_and_writes_nothing(tmp_path):
    spec = tmp_path / "lr.yaml"
    spec.write_text("parameters:\n  learning_rate: {values: [0.1, 0.01]}\nfixed: {dataset: digits}\n")
    store = tmp_path / "store.db"
    proc = lrtrack("sweep", "create", str(spec), "--store", f"sqlite:///{store}", "--backend", "local")
    assert assert_one_line_error(proc) == f"error: {spec}: parameters.learning_rate: unknown setting (not a TrainConfig field); did you mean lr?"
    assert not store.exists() and proc.stdout == ""


def test_files_with_every_wandb_key_register(tmp_path):
    spec = tmp_path / "full.yaml"
    spec.write_text(WANDB_FULL)
    proc = lrtrack("sweep", "create", str(spec), "--store", f"sqlite:///{tmp_path}/store.db", "--backend", "local")
    assert proc.returncode == 0, proc.stderr
    assert "runs: 4 (run_cap of a random search)" in proc.stderr and "warning" not in proc.stderr


def test_a_random_sweep_without_run_cap_is_unbounded_with_a_warning(tmp_path):
    spec = tmp_path / "random.yaml"
    spec.write_text("method: random\nparameters:\n  lr: {distribution: log_uniform_values, min: 0.001, max: 0.1}\n")
    proc = lrtrack("sweep", "create", str(spec), "--store", f"sqlite:///{tmp_path}/store.db", "--backend", "local")
    assert proc.returncode == 0, proc.stderr
    assert "runs: unbounded" in proc.stderr and "warning: a random sweep without run_cap" in proc.stderr


def test_show_counts_unproposed_grid_points_and_shows_a_running_attempts_latest_epoch(tmp_path):
    """Right after the first claim of a 4-point grid: 1 running, 3 pending out of 4, and the
    running attempt's row shows its latest stored epoch and metric, not '-'."""
    from lrtrack.cli.display import console, print_sweep
    from lrtrack.store import open_store
    from lrtrack.sweep import create_sweep, describe, propose

    path = write_sweep_spec(tmp_path / "grid.yaml", "grid", {"lr": [0.1, 0.01, 0.001, 0.0001]}, epochs=20)
    with open_store(f"sqlite:///{tmp_path}/store.db") as store:
        record = create_sweep(load_spec(path), store, "local")
        claim = store.claim_run(record.id, "w", propose(record.wandb_config), grace_seconds=60)
        for epoch, acc in ((1, 0.5), (2, 0.8125)):
            store.log_epoch(claim.attempt.id, {"epoch": epoch, "val/acc": acc, "train/loss": 1.0 / epoch})
        description = describe(store, record.id)
    assert description["sweep"]["progress"] == {"finished": 0, "running": 1, "pending": 3, "failed": 0,
                                                "cancelled": 0, "total": 4}
    (entry,) = description["runs"]
    assert (entry["epochs"], entry["epochs_planned"], entry["latest"]["val/acc"]) == (2, 20, 0.8125)
    with console.capture() as captured:
        print_sweep(description)
    text = captured.get()
    assert "0/4 finished, 1 running, 3 pending, 0 failed" in text
    (row,) = [line.split() for line in text.splitlines() if line.strip().startswith("1 ")]
    assert row[3:6] == ["running", "2/20", "81.25%"]
    with console.capture() as captured:
        print_sweep(description, wide=True)
    assert "worker" in captured.get() and "run state" in captured.get()  # --wide: every column
