"""``lrtrack sync``: upload a sweep's offline W&B runs with ``wandb sync``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lrtrack.cli import app
from lrtrack.cli.options import StoreOpt, SweepIdArg


@app.command()
def sync(
    sweep_id: SweepIdArg,
    wandb_dir: Annotated[Optional[Path], typer.Option(help="Folder holding the offline runs (default $WANDB_DIR or .).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the run folders and the command, upload nothing.")] = False,
    store: StoreOpt = None,
) -> None:
    """Upload every attempt of a sweep (group and tags are kept: they are in the run files)."""
    from lrtrack.store import open_store
    from lrtrack.syncing import incomplete_runs, offline_runs, sync_runs

    with open_store(store, create=False) as opened:
        sweep = opened.get_sweep(sweep_id)
        found, missing = offline_runs(opened, sweep.id, wandb_dir)
        incomplete = incomplete_runs(opened, sweep.id, wandb_dir)
    for run_id in missing:
        typer.echo(f"warning: no local folder for W&B run {run_id}", err=True)
    for line in incomplete:
        typer.echo(f"warning: {line}", err=True)
    command = sync_runs(sweep, found, dry_run=dry_run)
    typer.echo(("would run: " if dry_run else "ran: ") + " ".join(command))
