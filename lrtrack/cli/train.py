"""``lrtrack train``: one training run; its options are `TrainConfig`'s fields (see `lrtrack.cli.config_options`)."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from lrtrack.cli import app
from lrtrack.cli.config_options import ConfigFileOpt, with_options
from lrtrack.config import TrainConfig

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
) -> None:
    """Train one configuration and log it to W&B (offline when not logged in)."""
    from lrtrack.cli.config_options import train_config_from
    from lrtrack.cli.display import print_run_table, progress_hook
    from lrtrack.tracking import MemoryLogger, WandbLogger
    from lrtrack.train import run

    config = train_config_from(config_file, settings)
    logger = MemoryLogger() if no_wandb else WandbLogger(project, entity, mode="offline" if offline else None)
    with progress_hook(config) as hook:
        result = run(config, logger, on_epoch=hook)
    print_run_table(result)
