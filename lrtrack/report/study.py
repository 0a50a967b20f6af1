"""A sweep read as a learning-rate study: `load_study` gives a `Study` of `ConfigResult` rows.

Local sweeps are read from lrtrack's store (the attempt `shown_attempt` picks for each run);
``wandb``-backend sweeps from W&B's public API. Every config gets its `Verdict`
(`lrtrack.verdicts.judge`) here, once, for every renderer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lrtrack.config import ExpectedResult, Metric, TrainConfig, flat_settings
from lrtrack.errors import LrtrackError
from lrtrack.formatting import format_value
from lrtrack.metrics import BEST_EPOCH, BEST_VAL_ACC, TEST_ACC
from lrtrack.states import SUCCESS
from lrtrack.verdicts import Verdict, judge

if TYPE_CHECKING:
    from lrtrack.store import AttemptRecord, RunRecord, Store, SweepRecord


@dataclass
class ConfigResult:
    """One proposed configuration and the attempt a report shows for it."""

    run: int  #: proposal number in the sweep (1, 2, ...)
    attempt: int | None  #: attempt number in the store (None for W&B sweeps)
    config: dict[str, Any]  #: the swept values, e.g. {"lr": 0.001}
    label: str  #: "lr=0.001"
    state: str
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    wandb_run_id: str | None = None
    diverge_loss: float = TrainConfig.model_fields["diverge_loss"].default
    verdict: Verdict | None = None

    def final(self, key: str) -> float | None:
        """The final value of ``key``: the summary's, else the last epoch's."""
        value = self.summary.get(key)
        if value is None and self.history:
            value = self.history[-1].get(key)
        return _number(value)

    def series(self, key: str) -> tuple[list[int], list[float | None]]:
        rows = [row for row in self.history if key in row]
        return [row["epoch"] for row in rows], [_number(row[key]) for row in rows]

    @property
    def epochs_run(self) -> int:
        return int(self.summary.get("epochs_run") or len(self.history))

    @property
    def best_val_acc(self) -> float | None:
        return _number(self.summary.get(BEST_VAL_ACC))

    @property
    def best_epoch(self) -> int | None:
        value = self.summary.get(BEST_EPOCH)
        return int(value) if value is not None else None


@dataclass
class Study:
    """Everything a report renders, whichever backend the sweep ran on."""

    sweep_id: str
    name: str
    description: str
    backend: str
    state: str
    project: str
    entity: str | None
    method: str
    metric: Metric
    swept: list[str]  #: parameters with more than one value, in the spec's order; nested ones flat (`swept_axes`)
    parameters: dict[str, dict[str, Any]]
    fixed: dict[str, Any]
    num_classes: int | None  #: as the runs logged it (`logged_num_classes`); None when no run did
    created_at: datetime | None
    rows: list[ConfigResult]
    expected: list[ExpectedResult] = field(default_factory=list)
    range_test: dict[str, Any] | None = None  #: the `lrtrack lr-find` result the sweep was written from
    missing: list[dict[str, Any]] = field(default_factory=list)  #: grid points no run was made for

    @property
    def chance(self) -> float | None:
        """Chance accuracy, 1 / classes; None when no run logged its number of classes."""
        return 1.0 / self.num_classes if self.num_classes else None

    @property
    def has_test(self) -> bool:
        return any(TEST_ACC in row for result in self.rows for row in result.history)

    @property
    def lr_varies(self) -> bool:
        """A scheduler or warm-up is used, or the logged rate changes within some run."""
        schedules = [self.fixed.get("scheduler", "none"), *self.parameters.get("scheduler", {}).get("values", [])]
        if any(s != "none" for s in schedules) or self.fixed.get("warmup_epochs") or "warmup_epochs" in self.parameters:
            return True
        return any(len({v for v in r.series("lr")[1] if v is not None}) > 1 for r in self.rows)

    def matches(self, config: dict[str, Any], row: ConfigResult) -> bool:
        """``row``'s settings (fixed and swept) include every value of ``config`` (e.g. ``{"lr": 0.1}``)."""
        return config_matches(config, {**self.fixed, **row.config})

    def row_for(self, config: dict[str, Any]) -> ConfigResult | None:
        """The first measured configuration that `matches` ``config``."""
        return next((row for row in self.rows if self.matches(config, row)), None)


def _number(value: Any) -> float | None:
    if type(value) is float:  # nearly every logged value: judging a big sweep reads hundreds of thousands
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
        return float(value)
    return None


def config_label(config: dict[str, Any]) -> str:
    """``lr=0.001 optimizer=adam``: the legend entry of one configuration."""
    return " ".join(f"{k}={format_value(v)}" for k, v in config.items())


def load_study(store: Store, sweep_id: str) -> Study:
    """Read sweep ``sweep_id`` (store, or W&B's API for a ``wandb`` sweep) and judge every config."""
    from lrtrack.sweep import spec_of

    record = store.get_sweep(sweep_id)
    spec = spec_of(record)
    axes = swept_axes(spec)
    swept = list(axes)
    if record.backend == "wandb":
        rows = _rows_from_wandb(record, swept, spec.fixed)
    else:
        rows = [_row_from_store(run, swept, spec.fixed) for run in store.runs(sweep_id)]
    study = Study(
        sweep_id=record.id,
        name=spec.name,
        description=spec.description,
        backend=record.backend,
        state=record.state,
        project=record.project,
        entity=record.entity,
        method=spec.method,
        metric=spec.metric,
        swept=swept,
        parameters=spec.parameters,
        fixed=spec.fixed,
        num_classes=logged_num_classes(rows),
        created_at=record.created_at,
        rows=rows,
        expected=list(spec.expected),
        range_test=spec.range_test,
    )
    study.missing = _missing_grid_points(spec, axes, rows)
    judge(study)
    return study


def logged_num_classes(rows: list[ConfigResult]) -> int | None:
    """The number of classes the runs logged (``num_classes`` in their summaries, taken from the
    data by `lrtrack.train.run`); the most common one if runs differ, None when none logged it."""
    from collections import Counter

    logged = Counter(r.summary["num_classes"] for r in rows if isinstance(r.summary.get("num_classes"), int))
    return logged.most_common(1)[0][0] if logged else None


def swept_axes(spec) -> dict[str, list[Any] | None]:
    """The swept settings by their flat names, each with its listed values (None for a
    distribution): ``lr``, and for W&B's nested syntax one axis per nested parameter with
    listed values, e.g. ``model_args.width`` (what tables, labels and charts show). A sweep
    with no swept setting shows its parameters."""
    names = spec.swept or list(spec.parameters)
    axes: dict[str, list[Any] | None] = {}
    for key in names:
        body = spec.parameters[key]
        nested = body.get("parameters")
        if isinstance(nested, dict):
            listed = {name: inner["values"] for name, inner in nested.items() if isinstance(inner, dict) and "values" in inner}
            for name, inner in (listed or nested).items():
                axes[f"{key}.{name}"] = inner if isinstance(inner, list) else ([inner["value"]] if "value" in inner else None)
        else:
            axes[key] = body["values"] if "values" in body else ([body["value"]] if "value" in body else None)
    return axes


def flat_config(config: dict[str, Any], swept: list[str]) -> dict[str, Any]:
    """A run's values of the (flat) swept settings: ``{"lr": 0.01, "model_args.width": 64}``."""
    flat = flat_settings(config)
    return {key: flat.get(key) for key in swept}


def _missing_grid_points(spec, axes: dict[str, list[Any] | None], rows: list[ConfigResult]) -> list[dict[str, Any]]:
    """The grid's points (swept values only) that no run of the sweep was made for."""
    import itertools

    if spec.method != "grid":
        return []
    points = [[(k, v) for v in (values if values is not None else [None])] for k, values in axes.items()]
    made = {tuple(format_value(row.config.get(k)) for k in axes) for row in rows}
    return [dict(point) for point in itertools.product(*points)
            if tuple(format_value(v) for _, v in point) not in made]


def shown_attempt(run: RunRecord) -> AttemptRecord | None:
    """The last attempt that ended on its own (finished, diverged, early-stopped), else the latest."""
    completed = [attempt for attempt in run.attempts if attempt.state in SUCCESS]
    return completed[-1] if completed else run.latest


def _diverge_loss(fixed: dict[str, Any], config: dict[str, Any]) -> float:
    value = {**fixed, **config}.get("diverge_loss")
    return float(value) if value is not None else TrainConfig.model_fields["diverge_loss"].default


def _row_from_store(run: RunRecord, swept: list[str], fixed: dict[str, Any]) -> ConfigResult:
    attempt = shown_attempt(run)
    config = flat_config(run.config, swept)
    return ConfigResult(
        run=run.number,
        attempt=attempt.number if attempt else None,
        config=config,
        label=config_label(config),
        state=attempt.state if attempt else run.state,
        history=list(attempt.history) if attempt else [],
        summary=dict(attempt.summary) if attempt else {},
        wandb_run_id=attempt.wandb_run_id if attempt else None,
        diverge_loss=_diverge_loss(fixed, run.config),
    )


def _rows_from_wandb(record: SweepRecord, swept: list[str], fixed: dict[str, Any]) -> list[ConfigResult]:
    """A hosted W&B sweep's runs through the public API (history as logged, one row per epoch)."""
    import wandb

    path = "/".join(part for part in (record.entity, record.project, record.id) if part)
    try:
        sweep = wandb.Api().sweep(path)
        runs = sorted(sweep.runs, key=lambda run: str(getattr(run, "created_at", "")))  # ISO strings: oldest first
        rows = []
        for number, run in enumerate(runs, start=1):
            history = [{k: v for k, v in row.items() if not k.startswith("_")} for row in run.scan_history()]
            history = [row for row in history if row.get("epoch") is not None]
            summary = {k: v for k, v in run.summary_metrics.items() if not k.startswith("_")}
            config = flat_config(dict(run.config), swept)
            rows.append(ConfigResult(
                run=number, attempt=None, config=config, label=config_label(config),
                state=str(summary.get("state") or run.state), history=history, summary=summary,
                wandb_run_id=run.id, diverge_loss=_diverge_loss(fixed, dict(run.config)),
            ))
    except (wandb.errors.CommError, ValueError) as exc:
        raise LrtrackError(f"W&B sweep {path}: cannot read its runs ({exc})") from None
    return rows


def config_matches(wanted: dict[str, Any], config: dict[str, Any]) -> bool:
    """Every key of ``wanted`` has that value in ``config`` (numbers compared with a relative tolerance)."""
    for key, value in wanted.items():
        have = config.get(key)
        if isinstance(value, (int, float)) and isinstance(have, (int, float)):
            if not math.isclose(value, have, rel_tol=1e-9):
                return False
        elif have != value:
            return False
    return True
