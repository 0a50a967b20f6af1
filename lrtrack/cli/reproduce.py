"""``lrtrack reproduce``: run a published study offline and compare it with the published figures."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from lrtrack.cli import app
from lrtrack.cli.options import StoreOpt


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
    from lrtrack.cli.display import print_reproduction
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
