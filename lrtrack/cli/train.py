"""``lrtrack train``: one training run; its options are `TrainConfig`'s fields (see `lrtrack.cli.config_options`)."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from lrtrack.cli import app
from lrtrack.cli.config_options import ConfigFileOpt, with_options
from lrtrack.cli.options import VerboseOpt, WideOpt
from lrtrack.config import TrainConfig
from lrtrack.metrics import VAL_ACC

Opt = typer.Option

ProjectOpt = Annotated[str, Opt(help="W&B project.")]
EntityOpt = Annotated[Optional[str], Opt(help="W&B entity.")]
OfflineOpt = Annotated[bool, Opt("--offline", help="Log the W&B run offline (default when not logged in).")]


@app.command()
@with_options(settings=TrainConfig)
def train(
    settings: dict[str, Any],
    config_file: ConfigFileOpt = None,
    project: ProjectOpt = "lrtrack",
    entity: EntityOpt = None,
    offline: OfflineOpt = False,
    no_wandb: Annotated[bool, Opt("--no-wandb", help="Do not log to W&B at all.")] = False,
    verbose: VerboseOpt = False,
    wide: WideOpt = False,
) -> None:
    """Train one configuration and log it to W&B (offline when not logged in)."""
    from lrtrack.cli.config_options import train_config_from
    from lrtrack.cli.display import print_run_table
    from lrtrack.references import check_references
    from lrtrack.reporting import Reporter
    from lrtrack.store import new_id
    from lrtrack.tracking import MemoryLogger, WandbLogger
    from lrtrack.train import run

    config = train_config_from(config_file, settings)
    check_references([config])  # referenced dataset and model built on one real batch before any W&B run starts
    if no_wandb:
        logger, wandb_run = MemoryLogger(), "no W&B run"
    else:
        logger = WandbLogger(project, entity, mode="offline" if offline else None, run_id=new_id(), verbose=verbose)
        wandb_run = logger.describe()
    report = Reporter()
    report.run_started("run", config.label(), config.epochs, wandb_run)

    def on_epoch(metrics: dict[str, Any]) -> None:
        report.epoch("run", metrics, config.epochs)

    result = run(config, logger, on_epoch=on_epoch)
    report.run_ended("run", result.state, VAL_ACC, result.summary.get(VAL_ACC), getattr(logger, "folder", None))
    print_run_table(result, wide=wide)
