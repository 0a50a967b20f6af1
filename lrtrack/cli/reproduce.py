"""``lrtrack reproduce``: run a published study offline and compare it with the published figures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from lrtrack.cli import app
from lrtrack.cli.options import StoreOpt

if TYPE_CHECKING:
    from lrtrack.studies import Row, Study


@app.command()
def reproduce(
    spec: Annotated[Path, typer.Argument(help="A study's sweep file, e.g. sweeps/study-b-mnist-cnn-small.yaml.")],
    workers: Annotated[int, typer.Option(min=1, help="Agent processes on this machine.")] = 1,
    data_dir: Annotated[Optional[str], typer.Option(help="Dataset directory for every run (sets $LRTRACK_DATA_DIR).")] = None,
    sweep_id: Annotated[Optional[str], typer.Option("--sweep", help="Compare this finished sweep of SPEC instead of running a new one.")] = None,
    store: StoreOpt = None,
) -> None:
    """Run SPEC as a local sweep (offline W&B runs) and print measured vs published per configuration.

    Exits 1 when a row's check fails. Prints the sweep id as the last line.
    """
    from lrtrack.agent.settings import AgentSettings
    from lrtrack.cli.agent import run_agents
    from lrtrack.config import load_spec
    from lrtrack.errors import UserError
    from lrtrack.store import open_store
    from lrtrack.studies import check_data, reproduce_rows
    from lrtrack.sweep import create_sweep

    if data_dir:
        os.environ["LRTRACK_DATA_DIR"] = data_dir  # agent processes inherit it
    sweep_spec = load_spec(spec)
    with open_store(store) as opened:
        if sweep_id is None:
            check_data(sweep_spec)
            record = create_sweep(sweep_spec, opened, "local")
            typer.echo(f"created local sweep {record.name!r} ({record.id}) in {opened.url}", err=True)
            code = run_agents(opened, record.id, AgentSettings(offline=True), gpus=None, per_gpu=1, workers=workers, pack=1)
            if code:
                raise typer.Exit(code)
            sweep_id = record.id
        elif (name := opened.get_sweep(sweep_id).name) != sweep_spec.name:
            raise UserError(f"--sweep {sweep_id}: is sweep {name!r}, not {sweep_spec.name!r} of {spec}")
        study, rows = reproduce_rows(opened, sweep_id)
    print_reproduction(sweep_spec.name, sweep_id, study, rows)
    typer.echo(sweep_id)
    if any(row.passed is False for row in rows):
        raise typer.Exit(1)


def print_reproduction(name: str, sweep_id: str, study: Study, rows: list[Row]) -> None:
    """One table row per configuration: verdicts, measured vs published, checks, PASS/FAIL."""
    from rich.table import Table

    from lrtrack.cli.display import console

    table = Table("config", "verdict (ours / published)", "measured vs published", "checks", "result",
                  title=f"{name} ({sweep_id}): measured vs published", caption=study.compared, show_lines=True)
    for row in rows:
        published = row.expected.verdict if row.expected and row.expected.verdict else "—"
        checks = "\n".join(f"{'✓' if ok else '✗'} {text}" for text, ok in row.checks) or "—"
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
            return "—"
        value = row.result.final("val/acc")
        return f"val/acc {value:.2%}" if value is not None else "—"
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
