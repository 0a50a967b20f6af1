"""What training prints while it runs: one line when a run starts, its progress per
epoch, one line when it ends, every line prefixed by its worker when there are several.

`Reporter` is the only place agents and ``lrtrack train`` write progress to the
terminal. On a terminal (one worker) the epochs are a rich progress display; otherwise
(a pipe, a log file, one of several workers sharing a terminal) each epoch is one line.
W&B's own console output is off unless ``--verbose`` (`lrtrack.tracking.WandbLogger`),
so these lines are what a sweep prints.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

from lrtrack.formatting import format_metric
from lrtrack.metrics import BEST_VAL_ACC, PERF_EPOCH_SECONDS, PERF_SAMPLES_PER_SECOND, TEST_ACC, TEST_LOSS, TRAIN_ACC, TRAIN_LOSS, VAL_ACC, VAL_LOSS

#: Environment variable naming a worker started by ``lrtrack agent --workers/--gpus``.
WORKER_ENV = "LRTRACK_WORKER"

#: Short labels of the metric keys, for progress lines and narrow tables.
SHORT_LABELS = {
    TRAIN_LOSS: "train loss",
    TRAIN_ACC: "train acc",
    VAL_LOSS: "val loss",
    VAL_ACC: "val acc",
    TEST_LOSS: "test loss",
    TEST_ACC: "test acc",
    "lr": "lr",
    PERF_EPOCH_SECONDS: "s/epoch",
    PERF_SAMPLES_PER_SECOND: "samples/s",
    BEST_VAL_ACC: "best val acc",
}


def where_text(folder: Path | str | None) -> str:
    """A run's folder, relative to the working directory when it is below it."""
    if folder is None:
        return ""
    folder = Path(folder)
    try:
        return str(folder.relative_to(Path.cwd()))
    except ValueError:
        return str(folder)


class Reporter:
    """Writes one run's (or several packed runs') start, epochs and end.

    ``write`` takes one line (default: a rich console on stdout); ``worker`` prefixes every
    line (default: ``$LRTRACK_WORKER``); ``live`` uses a rich progress display instead of
    a line per epoch (default: stdout is a terminal and there is no worker prefix).
    Calling the reporter with a line writes that line.
    """

    def __init__(self, write: Callable[[str], None] | None = None, *, worker: str | None = None,
                 live: bool | None = None) -> None:
        from rich.console import Console

        self.console = Console(highlight=False)
        self.write = write or (lambda line: self.console.print(line, markup=False, highlight=False, soft_wrap=True))
        worker = worker if worker is not None else os.environ.get(WORKER_ENV)
        self.prefix = f"[{worker}] " if worker else ""
        self.live = (self.console.is_terminal and not worker) if live is None else live
        self._started: dict[str, float] = {}
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}

    @classmethod
    def wrap(cls, report: Reporter | Callable[[str], None] | None) -> Reporter:
        """A reporter for ``report``: itself, or one writing plain lines to a function."""
        if isinstance(report, Reporter):
            return report
        return cls(write=report, live=False) if report is not None else cls()

    def __call__(self, line: str) -> None:
        self.line(line)

    def line(self, text: str) -> None:
        text = self.prefix + text
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self.write(text)

    def run_started(self, run: str, label: str, epochs: int, wandb_run: str | None = None) -> None:
        """``run 3 attempt 1 started: lr=0.01 adam, 20 epochs (W&B run ab12cd34, offline)``."""
        self._started[run] = time.monotonic()
        self.line(f"{run} started: {label}, {epochs} epoch{'s' if epochs != 1 else ''}"
                  + (f" ({wandb_run})" if wandb_run else ""))
        if self.live:
            self._tasks[run] = self._live().add_task(f"{run}: {label}", total=epochs, status="")

    def epoch(self, run: str, metrics: dict[str, Any], epochs: int) -> None:
        """One epoch done: the progress display advances, or one line is written."""
        status = "  ".join(f"{SHORT_LABELS[key]} {format_metric(key, metrics[key])}"
                           for key in (TRAIN_LOSS, VAL_LOSS, VAL_ACC) if key in metrics)
        if self.live and run in self._tasks:
            brief = "  ".join(f"{SHORT_LABELS[key]} {format_metric(key, metrics[key])}"
                              for key in (TRAIN_LOSS, VAL_ACC) if key in metrics)
            self._progress.update(self._tasks[run], completed=metrics["epoch"], status=brief)
        else:
            self.line(f"{run} epoch {metrics['epoch']}/{epochs}: {status}")

    def run_ended(self, run: str, state: str, metric: str, value: Any, folder: Path | str | None = None) -> None:
        """``run 3 attempt 1 finished: val/acc 91.20% after 12.3 s, wandb/offline-run-...``."""
        seconds = time.monotonic() - self._started.pop(run, time.monotonic())
        if run in self._tasks:
            self._progress.remove_task(self._tasks.pop(run))
            if not self._tasks:
                self._progress.stop()
                self._progress = None
        where = where_text(folder)
        self.line(f"{run} {state}: {metric} {format_metric(metric, value)} after {seconds:.1f} s"
                  + (f", {where}" if where else ""))

    def _live(self) -> Any:
        if self._progress is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=10), MofNCompleteColumn(),
                                      TimeElapsedColumn(), TextColumn("{task.fields[status]}"),
                                      console=self.console, transient=True)
            self._progress.start()
        return self._progress
