"""The metric keys lrtrack logs: one home for their names.

`lrtrack.train` logs one row per epoch with `EPOCH_METRICS` (``test/*`` only when a
validation split is held out); a sweep's ``metric.name`` must be one of them, since
the sweeps engine (hyperband, bayes) and the reports read it from that history.
"""

from __future__ import annotations

#: The step key of every history row.
EPOCH = "epoch"

#: Keys of every per-epoch history row besides ``epoch``, in the order they are logged.
EPOCH_METRICS = (
    "train/loss",
    "train/acc",
    "val/loss",
    "val/acc",
    "test/loss",
    "test/acc",
    "lr",
    "perf/epoch_seconds",
    "perf/samples_per_second",
)

#: Keys a sweep may optimize (``metric.name`` in a sweep file).
SWEEP_METRICS = EPOCH_METRICS
