"""Tables for the terminal: every table and summary line the CLI prints is built here.

Default tables fit an 80-column terminal: the essential columns, short labels, ids in
full, long names folded rather than cut. ``--wide`` adds every other column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table

from lrtrack.formatting import MISSING, format_metric
from lrtrack.metrics import BEST_VAL_ACC, PERF_EPOCH_SECONDS, PERF_SAMPLES_PER_SECOND, TEST_ACC, TEST_LOSS, TRAIN_ACC, TRAIN_LOSS, VAL_ACC, VAL_LOSS
from lrtrack.reporting import SHORT_LABELS
from lrtrack.states import State

if TYPE_CHECKING:
    from lrtrack.lr_find import RangeTestResult
    from lrtrack.studies import PublishedStudy, Row
    from lrtrack.train import RunResult

console = Console(highlight=False)

#: Per-epoch columns of ``lrtrack train``'s table; ``--wide`` adds `WIDE_EPOCH_COLUMNS`.
EPOCH_COLUMNS = (TRAIN_LOSS, TRAIN_ACC, VAL_LOSS, VAL_ACC, "lr", PERF_EPOCH_SECONDS)
WIDE_EPOCH_COLUMNS = (TEST_LOSS, TEST_ACC, PERF_SAMPLES_PER_SECOND)


def new_table(*columns: str, title: str | None = None) -> Table:
    """A compact table (one space between columns, a rule under the header); cells fold
    instead of being cut with an ellipsis."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1), title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def print_table(table: Table, wide: bool = False) -> None:
    """Print ``table``: within the terminal's width, or with ``wide`` as wide as its cells need
    (wider than the terminal, which wraps the lines but cuts no cell)."""
    if not wide:
        console.print(table)
        return
    from rich.measure import Measurement

    needed = Measurement.get(console, console.options.update(max_width=10_000), table).maximum
    width = console.width
    console.width = max(width, needed)  # Console.print never exceeds the console's own width
    try:
        console.print(table)
    finally:
        console.width = width


def print_run_table(result: RunResult, wide: bool = False) -> None:
    """``lrtrack train``: one row per epoch."""
    wanted = EPOCH_COLUMNS + (WIDE_EPOCH_COLUMNS if wide else ())
    keys = [k for k in wanted if result.history and k in result.history[0]]
    table = new_table("epoch", *(SHORT_LABELS.get(k, k) for k in keys), title=f"{result.config.label()}: {result.state}")
    for row in result.history:
        table.add_row(str(row["epoch"]), *(format_metric(k, row.get(k)) for k in keys))
    print_table(table, wide)


def print_sweep_list(rows: list[dict[str, Any]], wide: bool = False) -> None:
    """``sweep list``: id, name, state and run counts (``--wide``: backend, created)."""
    columns = ["id", "name", "state", State.FINISHED, State.RUNNING, State.PENDING, State.FAILED]
    if wide:
        columns += ["backend", "created"]
    table = new_table(*columns)
    for row in rows:
        progress = row["progress"]
        total = progress["total"] if progress["total"] is not None else "?"
        cells = [row["id"], row["name"], row["state"], f"{progress[State.FINISHED]}/{total}",
                 str(progress[State.RUNNING]), str(progress[State.PENDING]), str(progress[State.FAILED])]
        if wide:
            cells += [row["backend"], row["created"]]
        table.add_row(*cells)
    print_table(table, wide)


def print_sweep(description: dict[str, Any], wide: bool = False) -> None:
    """``sweep show``: a header with the run counts, then one row per attempt.

    The metric column is the final value, or for an attempt still running (or stopped
    before its end) the value of its latest stored epoch; ``epochs`` is stored/planned.
    An attempt whose W&B file is incomplete says so in its state (``finished, W&B
    incomplete``); a line under the table says why and where.
    """
    from lrtrack.sweep import progress_text

    sweep = description["sweep"]
    console.print(f"[bold]{sweep['name']}[/] {sweep['id']} ({sweep['backend']}, {sweep['state']})")
    console.print(f"runs: {progress_text(sweep['progress'])}")
    if not description["runs"]:  # a line that says so, not an empty table
        console.print(f"no run has started yet (start one with: lrtrack agent {sweep['id']})")
        return
    metric = sweep["metric"]["name"]
    config_keys = list(description["runs"][0]["config"]) if description["runs"] else []
    if not wide:  # the swept parameters; a parameter with one value is the same in every row
        config_keys = [key for key in config_keys if key in sweep["swept"]]
    verdicts = any(entry.get("verdict") for entry in description["runs"])
    columns = ["run", *config_keys, "try", "state", "epochs", SHORT_LABELS.get(metric, metric),
               *(["verdict"] if verdicts else []), "W&B run"]
    if wide:
        columns += ["best val acc", "run state", "worker"]
    errors = any(entry.get("error") for entry in description["runs"])  # failed attempts' one-line errors
    if errors:
        columns.append("error")
    table = new_table(*columns)
    for entry in description["runs"]:
        value = entry["metrics"].get(metric, entry.get("latest", {}).get(metric))
        cells = [
            str(entry["run"]),
            *(format_metric(k, entry["config"].get(k)) for k in config_keys),
            str(entry["attempt"]),
            entry["state"] + (", W&B incomplete" if entry.get("wandb_incomplete") else ""),
            f"{entry['epochs']}/{entry['epochs_planned']}",
            format_metric(metric, value),
            *([entry.get("verdict") or ""] if verdicts else []),
            entry["wandb_run_id"] or "-",
        ]
        if wide:
            cells += [format_metric(BEST_VAL_ACC, entry["metrics"].get(BEST_VAL_ACC)), entry["run_state"],
                      entry["worker"] or "-"]
        if errors:
            cells.append(entry.get("error") or "")
        table.add_row(*cells)
    print_table(table, wide)
    for entry in description["runs"]:
        if entry.get("wandb_incomplete"):
            console.print(f"W&B run {entry['wandb_run_id']} (run {entry['run']} attempt {entry['attempt']}) "
                          f"incomplete: {entry['wandb_incomplete']}", markup=False, highlight=False)


def print_reproduction(name: str, sweep_id: str, study: PublishedStudy, rows: list[Row]) -> None:
    """One table row per configuration: verdicts, measured vs published, checks, PASS/FAIL."""
    table = Table("config", "verdict (ours / published)", "measured vs published", "checks", "result",
                  title=f"{name} ({sweep_id}): measured vs published", caption=study.compared, show_lines=True)
    for row in rows:
        published = row.expected.verdict if row.expected and row.expected.verdict else MISSING
        checks = "\n".join(f"{'✓' if ok else '✗'} {text}" for text, ok in row.checks) or MISSING
        result = {True: "[green]PASS[/]", False: "[red]FAIL[/]", None: "shown"}[row.passed]
        table.add_row(row.label, f"{row.verdict} / {published}", _numbers(row), checks, result)
    console.print(table)
    failed = sum(row.passed is False for row in rows)
    checked = sum(row.passed is not None for row in rows)
    console.print(f"{checked - failed} of {checked} checked rows pass" + (f"; {failed} FAIL" if failed else ""))


def _numbers(row: Row) -> str:
    """``val/acc 86.97% vs 87.00% (-0.03 pts)``, one line per metric; per-epoch lists as arrows."""
    if not row.lines:
        if row.result is None:
            return MISSING
        value = row.result.final(VAL_ACC)
        return f"val/acc {value:.2%}" if value is not None else MISSING
    grouped: dict[str, list] = {}
    for line in row.lines:
        grouped.setdefault(line.metric.split(" ")[0], []).append(line)
    texts = []
    for metric, lines in grouped.items():
        if len(lines) == 1 and " " not in lines[0].metric:
            line = lines[0]
            texts.append(f"{metric} {line.text('measured')} vs {line.text('published')} ({line.text('difference')})")
        else:
            measured = " → ".join(line.text("measured") for line in lines)
            published = " → ".join(line.text("published") for line in lines)
            texts.append(f"{metric} per epoch: {measured}\n  published: {published}")
    return "\n".join(texts)


#: Below this fall of the median curve (a fraction of its first value) the command warns.
NO_DESCENT = 0.02


def print_lr_find(result: RangeTestResult) -> None:
    """The suggestions side by side, with the numbers behind them and their spread over seeds."""
    from lrtrack import lr_find as lib

    seeds = len(result.seeds)
    stops = ", ".join(f"seed {s}: {c.stop} after {len(c.lrs)}" for s, c in zip(result.seeds, result.curves))
    columns = ["rule", "suggested lr", *(["seeds' range"] if seeds > 1 else []), "behind it"]
    table = Table(*columns, title=f"LR range test ({'median of ' + str(seeds) + ' seeds' if seeds > 1 else 'one seed'})")
    for rule, suggestion in result.suggestions.items():
        name = f"{rule} (default)" if rule == result.default.rule else rule
        spread = [lib.spread_text(result, rule)] if seeds > 1 else []
        table.add_row(name, lib.describe_lr(suggestion.lr), *spread, suggestion.detail)
    console.print(table)
    console.print(f"curves: {stops}" + (" (seeds trained together with vmap)" if result.batched else ""))
    if result.drop < NO_DESCENT:
        console.print(f"[yellow]warning:[/] the smoothed loss fell only {result.drop:.1%} below its start: the curve "
                      "shows no clear descent; the suggestions are unreliable (try a larger --num-iter)")
    console.print(f"suggestion: lr = {lib.describe_lr(result.default.lr)} ({result.default.rule})")
