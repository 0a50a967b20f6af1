"""``lrtrack lr-find``: the learning-rate range test (`lrtrack.lr_find`) with ``lrtrack train``'s settings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from lrtrack.cli import app
from lrtrack.cli.config_options import ConfigFileOpt, with_options
from lrtrack.cli.train import EntityOpt, OfflineOpt, ProjectOpt
from lrtrack.config import TrainConfig
from lrtrack.lr_find import RangeTestSettings

Opt = typer.Option



@app.command("lr-find")
@with_options(settings=TrainConfig, test=RangeTestSettings)
def lr_find(
    settings: dict[str, Any],
    test: dict[str, Any],
    config_file: ConfigFileOpt = None,
    html: Annotated[Optional[Path], Opt(help="Write the chart and suggestions as one self-contained HTML page.")] = None,
    write_sweep: Annotated[Optional[Path], Opt(help="Write a sweep file (W&B syntax) with an lr grid around the suggestion.")] = None,
    method: Annotated[str, Opt(help="Search method of --write-sweep: grid, random or bayes.")] = "grid",
    project: ProjectOpt = "lrtrack",
    entity: EntityOpt = None,
    offline: OfflineOpt = False,
    no_wandb: Annotated[bool, Opt("--no-wandb", help="Do not log to W&B at all.")] = False,
) -> None:
    """Learning-rate range test: the rate grows exponentially batch by batch; suggestions are read off the loss curve."""
    from lrtrack import lr_find as lib
    from lrtrack.cli.config_options import train_config_from
    from lrtrack.cli.display import print_lr_find
    from lrtrack.errors import UserError
    from lrtrack.references import check_references
    from lrtrack.tracking import resolve_wandb_mode

    # everything is checked before anything runs or is written
    config = train_config_from(config_file, settings)
    check_references([config])  # a referenced model built on one real batch before anything is written
    test_settings = lib.make_settings(test)
    if method not in lib.SWEEP_METHODS:
        raise UserError(f"--method: must be one of {', '.join(lib.SWEEP_METHODS)}, not {method!r}")
    for flag, path in (("--html", html), ("--write-sweep", write_sweep)):
        if path is not None and not path.parent.is_dir():
            raise UserError(f"{flag} {path}: folder {path.parent} does not exist")

    with _progress(test_settings) as on_step:
        result = lib.lr_find(config, test_settings, on_step=on_step)
    print_lr_find(result)
    if html is not None:
        typer.echo(f"chart: {lib.write_html(result, html)}")
    if write_sweep is not None:
        typer.echo(f"sweep: {lib.write_sweep(result, write_sweep, method)} (lrtrack sweep create {write_sweep})")
    if not no_wandb:
        run_id = lib.log_to_wandb(result, project, entity, mode=resolve_wandb_mode(offline))
        typer.echo(f"W&B run: {run_id}")


def _progress(settings: RangeTestSettings):
    """A progress bar over the schedule's batches; yields the `lrtrack.lr_find.StepHook`."""
    import contextlib

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lrtrack.cli.display import console

    @contextlib.contextmanager
    def bar():
        columns = (TextColumn("[bold]lr-find"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.fields[status]}"))
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("lr-find", total=settings.num_iter, status="")

            def on_step(i: int, lr: float, losses: list[float]) -> None:
                # sequential seeds restart the schedule: the bar shows the current seed's batch
                progress.update(task, completed=i + 1, status=f"lr {lr:.2e}  loss {min(losses, default=float('nan')):.4f}")

            yield on_step

    return bar()
