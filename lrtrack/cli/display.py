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
