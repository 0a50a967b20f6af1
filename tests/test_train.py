"""The shared training function, on real data (digits and the MNIST subset), CPU."""

from __future__ import annotations

import gc
import math

import pytest

from lrtrack.config import TrainConfig
from lrtrack.tracking import MemoryLogger
from lrtrack.train import run

KEYS = {"epoch", "train/loss", "train/acc", "val/loss", "val/acc", "lr", "perf/epoch_seconds", "perf/samples_per_second"}


def test_digits_learns_and_logs_every_epoch():
    logger = MemoryLogger()
    result = run(TrainConfig(dataset="digits", lr=0.01, epochs=3), logger)
    assert result.state == "finished"
    assert [row["epoch"] for row in logger.history] == [1, 2, 3]
    assert all(KEYS <= set(row) for row in logger.history)
    assert logger.history[-1]["val/acc"] > 0.9
    assert logger.history[-1]["train/loss"] < logger.history[0]["train/loss"]
    assert logger.summary["state"] == "finished"
    assert logger.summary["best/val_acc"] == max(row["val/acc"] for row in logger.history)
    assert {"final", "best", "curves"} <= set(logger.files)
    assert all(path.is_file() for path in logger.files.values())
    folder = logger.files["final"].parent
    del logger, result  # a run without W&B leaves no files behind once its logger is gone
    gc.collect()
    assert not folder.exists()


def test_same_seed_same_result_on_cpu():
    config = TrainConfig(dataset="digits", lr=0.01, epochs=2, seed=3, device="cpu")
    first, second = run(config), run(config)
    assert [r["train/loss"] for r in first.history] == [r["train/loss"] for r in second.history]
    other = run(config.model_copy(update={"seed": 4}))
    assert [r["train/loss"] for r in other.history] != [r["train/loss"] for r in first.history]


def test_step_lr_changes_after_epoch_five_not_before():
    """StepLR(step_size=5, gamma=0.5) from 0.05: epochs 1-5 at 0.05, 6-10 at 0.025 (study E)."""
    config = TrainConfig(dataset="digits", model="mlp2", optimizer="sgd", lr=0.05, scheduler="step", step_size=5, gamma=0.5, epochs=10)
    lrs = [row["lr"] for row in run(config).history]
    assert lrs == pytest.approx([0.05] * 5 + [0.025] * 5, rel=1e-12)


def test_onecycle_steps_per_batch_and_logs_the_epoch_mean():
    config = TrainConfig(dataset="digits", optimizer="sgd", lr=0.1, scheduler="onecycle", epochs=4)
    lrs = [row["lr"] for row in run(config).history]
    assert max(lrs) < 0.1  # the mean over an epoch never reaches the peak
    assert lrs[0] < lrs[1] and lrs[-1] < lrs[1]  # warms up, then anneals


def test_warmup_then_cosine():
    config = TrainConfig(dataset="digits", optimizer="sgd", lr=0.1, scheduler="cosine", warmup_epochs=2, epochs=5)
    lrs = [row["lr"] for row in run(config).history]
    assert lrs[:3] == pytest.approx([0.1 / 3, 0.2 / 3, 0.1])
    assert lrs[3] < lrs[2] and lrs[4] < lrs[3]


def test_divergence_ends_the_run_with_state_diverged():
    config = TrainConfig(dataset="digits", optimizer="sgd", lr=1e4, epochs=5, diverge_loss=50)
    logger = MemoryLogger()
    result = run(config, logger)
    assert result.state == "diverged"
    assert len(result.history) < 5
    last = result.history[-1]["train/loss"]
    assert not math.isfinite(last) or last > 50
    assert logger.summary["state"] == "diverged"
    seen = []
    run(config, on_epoch=lambda m: seen.append(m["epoch"]))
    assert seen == [row["epoch"] for row in result.history]  # the hook sees the diverging epoch too


def test_hook_can_stop_a_run():
    result = run(TrainConfig(dataset="digits", epochs=5), on_epoch=lambda m: "early-stopped" if m["epoch"] == 2 else None)
    assert result.state == "early-stopped" and len(result.history) == 2


def test_validation_split_adds_test_metrics_and_subsets_are_seeded(data_dir):
    config = TrainConfig(dataset="mnist", data_dir=str(data_dir), model="cnn-small", train_size=1000, test_size=500, val_split=0.2, epochs=1)
    result = run(config)
    row = result.history[0]
    assert {"test/loss", "test/acc"} <= set(row)
    assert row["perf/samples_per_second"] == pytest.approx(800 / row["perf/epoch_seconds"])
    again = run(config)
    assert again.history[0]["val/acc"] == row["val/acc"]


def test_cnn_handles_8x8_digits():
    result = run(TrainConfig(dataset="digits", model="cnn", epochs=1))
    assert result.history[0]["val/acc"] > 0.2
