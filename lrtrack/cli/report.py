"""``lrtrack report ID``: a sweep as a learning-rate study, as an HTML file or a W&B Report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from lrtrack.cli import app
from lrtrack.cli.options import StoreOpt, SweepIdArg


@app.command()
def report(
    sweep_id: SweepIdArg,
    html: Annotated[Optional[Path], typer.Option("--html", help="Write a self-contained HTML report to this file.",
                                                 show_default=False)] = None,
    wandb: Annotated[bool, typer.Option("--wandb", help="Build a W&B Report (saved online; its URL is printed).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="With --wandb: print the report's blocks as JSON, contact no server.")] = False,
    store: StoreOpt = None,
) -> None:
    """Results table, per-epoch curves and a verdict per config. Without --html/--wandb: the table as Markdown."""
    from lrtrack.errors import LrtrackError, UserError
    from lrtrack.report.html import write_html
    from lrtrack.report.study import load_study
    from lrtrack.report.tables import results_markdown
    from lrtrack.report.wandb_report import save_wandb_report, wandb_report_json
    from lrtrack.store import open_store

    if dry_run and not wandb:
        raise UserError("--dry-run: only meaningful with --wandb")
    with open_store(store, create=False) as opened:
        study = load_study(opened, sweep_id)
    if not study.rows:
        raise LrtrackError(f"sweep {study.sweep_id} has no runs yet: nothing to report "
                           f"(start one with: lrtrack agent {study.sweep_id})")
    if html is not None:
        written = write_html(study, html)
        typer.echo(f"wrote {written}", err=True)
    if wandb and dry_run:
        typer.echo(json.dumps(wandb_report_json(study), indent=2))
    elif wandb:
        typer.echo(save_wandb_report(study))
    if html is None and not wandb:
        typer.echo(results_markdown(study))
