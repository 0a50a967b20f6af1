"""The metric keys lrtrack logs: one home for their names.

`lrtrack.train` logs one row per epoch with `EPOCH_METRICS` (``test/*`` only when a
validation split is held out); a sweep's ``metric.name`` must be one of them, since
the sweeps engine (hyperband, bayes) and the reports read it from that history.
"""

from __future__ import annotations

#: The step key of every history row.
EPOCH = "epoch"

# One name per logged key: modules use these names, never the strings.
TRAIN_LOSS = "train/loss"
TRAIN_ACC = "train/acc"
VAL_LOSS = "val/loss"
VAL_ACC = "val/acc"  #: the default sweep metric, and what "best" means in a run's summary
TEST_LOSS = "test/loss"  #: logged only when a validation split is held out
TEST_ACC = "test/acc"
LR = "lr"
PERF_EPOCH_SECONDS = "perf/epoch_seconds"
PERF_SAMPLES_PER_SECOND = "perf/samples_per_second"

#: Keys of every per-epoch history row besides ``epoch``, in the order they are logged.
EPOCH_METRICS = (TRAIN_LOSS, TRAIN_ACC, VAL_LOSS, VAL_ACC, TEST_LOSS, TEST_ACC, LR, PERF_EPOCH_SECONDS,
                 PERF_SAMPLES_PER_SECOND)

# Keys of a run's summary besides the last epoch's metrics.
BEST_VAL_ACC = "best/val_acc"  #: the highest val/acc of the run
BEST_EPOCH = "best/epoch"  #: the epoch it was reached at
PERF_RUN_SECONDS = "perf/run_seconds"  #: wall time of the run
PERF_OVERHEAD_SECONDS = "perf/overhead_seconds"  #: the run's time not spent in epochs

#: Keys a sweep may optimize (``metric.name`` in a sweep file).
SWEEP_METRICS = EPOCH_METRICS
