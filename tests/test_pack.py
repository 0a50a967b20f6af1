"""Packed training (`lrtrack.pack`): K configs in one process give what each gives alone.

Real data (digits), CPU, real offline W&B runs read back with ``wandb leet inspect``,
and a real sweep through the CLI with ``--pack 3`` and a SQLite store.
"""

from __future__ import annotations


import pytest
from clitools import lrtrack, show, write_sweep_spec

from lrtrack import wandb_files
from lrtrack.config import TrainConfig
from lrtrack.errors import LrtrackError
from lrtrack.pack import pack_key, run_packed
from lrtrack.tracking import MemoryLogger, WandbLogger
from lrtrack.train import run

DIGITS = {"dataset": "digits", "device": "cpu"}


def compare(packed, alone, keys=("train/loss", "train/acc", "val/loss", "val/acc", "lr")) -> None:
    assert packed.state == alone.state
    assert [row["epoch"] for row in packed.history] == [row["epoch"] for row in alone.history]
    for got, want in zip(packed.history, alone.history):
        for key in keys:
            assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), (key, got["epoch"])


def test_packed_members_match_training_each_alone():
    """Different lr, optimizer, scheduler, seed and epochs: each member equals its own train.run."""
    configs = [
        TrainConfig(**DIGITS, optimizer="adam", lr=0.01, epochs=3, seed=0),
        TrainConfig(**DIGITS, optimizer="sgd", momentum=0.9, nesterov=True, lr=0.05, scheduler="onecycle", epochs=2, seed=1),
        TrainConfig(**DIGITS, optimizer="rmsprop", lr=0.001, scheduler="step", step_size=1, gamma=0.5, epochs=3, seed=2),
    ]
    loggers = [MemoryLogger() for _ in configs]
    packed = run_packed(configs, loggers, [None] * 3)
    for config, result, logger in zip(configs, packed, loggers):
        compare(result, run(config))
        assert logger.history == result.history and logger.summary == result.summary
        assert {"final", "best", "curves"} <= set(logger.files)
    # seeds differ, so weights and data orders differ: members are not copies of each other
    assert packed[0].history[0]["train/loss"] != packed[2].history[0]["train/loss"]
    assert [row["lr"] for row in packed[2].history] == pytest.approx([0.001, 0.0005, 0.00025])
    assert [len(result.history) for result in packed] == [3, 2, 3]  # each stops at its own epochs


def test_own_subsets_and_validation_split_per_seed(data_dir):
    """With subsets and a validation split each seed gets its own data, as alone."""
    base = dict(dataset="mnist", data_dir=str(data_dir), model="cnn-small", train_size=600, test_size=300,
                val_split=0.2, epochs=2, batch_size=32, device="cpu")
    configs = [TrainConfig(**base, lr=0.003, seed=5), TrainConfig(**base, optimizer="adamw", lr=0.001, seed=6)]
    for packed, config in zip(run_packed(configs), configs):
        compare(packed, run(config), keys=("train/loss", "val/acc", "test/loss", "test/acc"))


def test_diverging_member_drops_out_and_the_others_finish():
    configs = [
        TrainConfig(**DIGITS, optimizer="sgd", lr=1e4, epochs=4, diverge_loss=50),
        TrainConfig(**DIGITS, lr=0.01, epochs=4),
        TrainConfig(**DIGITS, optimizer="sgd", momentum=0.5, lr=0.1, epochs=4),
    ]
    packed = run_packed(configs)
    assert packed[0].state == "diverged" and len(packed[0].history) < 4
    assert packed[0].summary["state"] == "diverged"
    for result, config in zip(packed[1:], configs[1:]):
        assert result.state == "finished" and len(result.history) == 4
        compare(result, run(config))


def test_hook_stops_one_member_only():
    configs = [TrainConfig(**DIGITS, lr=lr, epochs=3) for lr in (0.01, 0.003)]
    stop_first = lambda metrics: "early-stopped" if metrics["epoch"] == 1 else None  # noqa: E731
    seen: list[dict] = []
    packed = run_packed(configs, hooks=[stop_first, seen.append])
    assert packed[0].state == "early-stopped" and len(packed[0].history) == 1
    assert packed[1].state == "finished" and [row["epoch"] for row in seen] == [1, 2, 3]
    compare(packed[1], run(configs[1]))


def test_drop_last_trains_on_whole_batches_like_alone():
    configs = [TrainConfig(**DIGITS, drop_last=True, lr=lr, epochs=2) for lr in (0.01, 0.002)]
    for packed, config in zip(run_packed(configs), configs):
        compare(packed, run(config))  # losses averaged over whole batches only, as alone


def test_non_training_overhead_is_reported_per_run():
    """Time outside the epochs (here a slow per-epoch hook, like a store write) is overhead, alone and packed."""
    import time

    def slow_hook(metrics):
        time.sleep(0.3)

    configs = [TrainConfig(**DIGITS, lr=lr, epochs=2) for lr in (0.01, 0.003)]
    results = [run(configs[0], on_epoch=slow_hook), *run_packed(configs, hooks=[slow_hook, slow_hook])]
    for result in results:
        training = sum(row["perf/epoch_seconds"] for row in result.history)
        assert result.summary["perf/overhead_seconds"] >= 0.6  # the two hook calls
        assert result.summary["perf/run_seconds"] >= training + 0.6


def test_pack_key_and_incompatible_configs():
    a = TrainConfig(**DIGITS, lr=0.01, optimizer="sgd", seed=1, epochs=2)
    assert pack_key(a) == pack_key(TrainConfig(**DIGITS, lr=0.1, scheduler="cosine", seed=7, epochs=5))
    assert pack_key(a) != pack_key(TrainConfig(**DIGITS, batch_size=32))
    assert pack_key(a) != pack_key(TrainConfig(**DIGITS, hidden=64))
    with pytest.raises(LrtrackError, match="batch_size"):
        run_packed([a, TrainConfig(**DIGITS, batch_size=32)])


def test_each_member_is_its_own_offline_wandb_run(offline_wandb):
    configs = [TrainConfig(**DIGITS, lr=lr, epochs=2) for lr in (0.01, 0.001)]
    loggers = [WandbLogger(mode="offline", name=f"member {i}") for i in range(2)]
    packed = run_packed(configs, loggers)
    run_ids = [result.wandb_run_id for result in packed]
    assert len(set(run_ids)) == 2 and None not in run_ids
    for result, config in zip(packed, configs):
        run_dir = wandb_files.find_run_dir(result.wandb_run_id, offline_wandb)
        summary = wandb_files.read_summary(run_dir)
        assert summary["config"]["lr"] == config.lr
        assert summary["summary"]["state"] == "finished"
        assert summary["summary"]["perf/overhead_seconds"] > 0  # W&B init, checkpoints, curves figure
        records = wandb_files.read_records(run_dir)
        rows = wandb_files.history_rows(records)
        assert [row["epoch"] for row in rows] == [1, 2]
        assert [row["val/acc"] for row in rows] == pytest.approx([row["val/acc"] for row in result.history])
        assert [a["type"] for a in wandb_files.artifacts(records)] == ["model"]


@pytest.mark.slow
def test_sweep_run_with_pack_3_through_the_cli(tmp_path, offline_wandb):
    spec = write_sweep_spec(tmp_path / "grid.yaml", "packed-grid", {"lr": [0.03, 0.01, 0.003]}, epochs=2, device="cpu")
    store = f"sqlite:///{tmp_path}/store.db"
    proc = lrtrack("sweep", "run", str(spec), "--pack", "3", "--store", store, "--offline")
    assert proc.returncode == 0, proc.stderr
    sweep_id = proc.stdout.strip().splitlines()[-1]
    entries = show(sweep_id, store)["runs"]
    assert sorted(entry["config"]["lr"] for entry in entries) == [0.003, 0.01, 0.03]
    assert {entry["state"] for entry in entries} == {"finished"}
    assert len({entry["worker"] for entry in entries}) == 1  # one agent trained all three
    lines = proc.stdout.splitlines()
    started = [i for i, line in enumerate(lines) if "(W&B run " in line]
    ended = [i for i, line in enumerate(lines) if " finished: " in line]
    assert len(started) == 3 and max(started) < min(ended)  # trained together: all began before any ended
    histories = []
    for entry in entries:
        run_dir = wandb_files.find_run_dir(entry["wandb_run_id"], offline_wandb)
        summary = wandb_files.read_summary(run_dir)
        assert summary["config"]["lr"] == entry["config"]["lr"] and summary["config"]["sweep_id"] == sweep_id
        rows = wandb_files.history_rows(wandb_files.read_records(run_dir))
        assert [row["epoch"] for row in rows] == [1, 2]
        assert rows[-1]["val/acc"] == pytest.approx(entry["metrics"]["val/acc"])
        histories.append([row["train/loss"] for row in rows])
        # the packed member's history is what training that config alone gives
        alone = run(TrainConfig(**DIGITS, lr=entry["config"]["lr"], epochs=2))
        assert [row["train/loss"] for row in rows] == pytest.approx([r["train/loss"] for r in alone.history], rel=1e-4)
    assert len({tuple(h) for h in histories}) == 3  # three different runs, not one logged three times
