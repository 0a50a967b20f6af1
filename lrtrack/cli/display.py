"""Rich progress and tables for the terminal (the CLI's only output helpers)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from lrtrack.config import TrainConfig
    from lrtrack.train import EpochHook, RunResult

console = Console(highlight=False)

METRIC_COLUMNS = ("train/loss", "train/acc", "val/loss", "val/acc", "lr", "perf/epoch_seconds")


@contextlib.contextmanager
def progress_hook(config: TrainConfig) -> Iterator[EpochHook]:
    """A progress bar over epochs; yields the hook `lrtrack.train.run` calls after each epoch."""
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.fields[status]}"))
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(config.label(), total=config.epochs, status="")

        def hook(metrics: dict[str, Any]) -> None:
            status = f"loss {metrics['train/loss']:.4f}  val acc {metrics['val/acc']:.2%}"
            progress.update(task, advance=1, status=status)

        yield hook


def format_value(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if key.endswith("/acc") or key.endswith("_acc"):
            return f"{value:.2%}"
        if key == "lr":
            return f"{value:.3g}"
        return f"{value:.4f}"
    return str(value)


def print_run_table(result: RunResult) -> None:
    """One row per epoch, then the final state and W&B run id."""
    keys = [k for k in METRIC_COLUMNS if result.history and k in result.history[0]]
    table = Table("epoch", *keys, title=f"{result.config.label()} — {result.state}")
    for row in result.history:
        table.add_row(str(row["epoch"]), *(format_value(k, row.get(k)) for k in keys))
    console.print(table)
    if result.wandb_run_id:
        console.print(f"W&B run: {result.wandb_run_id}")


def print_sweep(description: dict[str, Any]) -> None:
    """``sweep show``: a header with state counts, then one row per attempt."""
    sweep = description["sweep"]
    counts = ", ".join(f"{n} {state}" for state, n in sorted(sweep["run_states"].items())) or "no runs yet"
    console.print(f"[bold]{sweep['name']}[/] {sweep['id']} ({sweep['backend']}, {sweep['state']}): {counts}")
    metric = sweep["metric"]["name"]
    config_keys = list(description["runs"][0]["config"]) if description["runs"] else []
    table = Table("run", *config_keys, "attempt", "state", "epochs", f"final {metric}", "best val/acc", "W&B run")
    for entry in description["runs"]:
        metrics = entry["metrics"]
        table.add_row(
            str(entry["run"]),
            *(format_value(k, entry["config"].get(k)) for k in config_keys),
            str(entry["attempt"]),
            entry["state"],
            str(entry["epochs"]),
            format_value(metric, metrics.get(metric)),
            format_value("best/val_acc", metrics.get("best/val_acc")),
            entry["wandb_run_id"] or "-",
        )
    console.print(table)
