"""``lrtrack train``: one training run with the options of `TrainConfig`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from lrtrack.cli import app

Opt = typer.Option


@app.command()
def train(
    config_file: Annotated[Optional[Path], Opt("--config", help="YAML file of TrainConfig settings; flags override it.")] = None,
    dataset: Annotated[Optional[str], Opt(help="mnist, fashion-mnist or digits.")] = None,
    data_dir: Annotated[Optional[str], Opt(help="Dataset directory (default $LRTRACK_DATA_DIR or ~/.cache/lrtrack/datasets).")] = None,
    train_size: Annotated[Optional[int], Opt(help="Seeded subset of the training split.")] = None,
    test_size: Annotated[Optional[int], Opt(help="Seeded subset of the test split.")] = None,
    val_split: Annotated[Optional[float], Opt(help="Fraction of train held out for validation.")] = None,
    model: Annotated[Optional[str], Opt(help="fcn, mlp2, cnn or cnn-small.")] = None,
    hidden: Annotated[Optional[int], Opt(help="Hidden width of fcn/mlp2.")] = None,
    optimizer: Annotated[Optional[str], Opt(help="sgd, adam, adamw or rmsprop.")] = None,
    lr: Annotated[Optional[float], Opt(help="Learning rate.")] = None,
    momentum: Annotated[Optional[float], Opt(help="SGD/RMSprop momentum.")] = None,
    nesterov: Annotated[Optional[bool], Opt("--nesterov/--no-nesterov", help="Nesterov momentum (sgd).")] = None,
    weight_decay: Annotated[Optional[float], Opt(help="Weight decay.")] = None,
    scheduler: Annotated[Optional[str], Opt(help="none, step, cosine, exponential, onecycle or plateau.")] = None,
    step_size: Annotated[Optional[int], Opt(help="StepLR step size (epochs); plateau patience.")] = None,
    gamma: Annotated[Optional[float], Opt(help="StepLR/ExponentialLR/plateau decay factor.")] = None,
    warmup_epochs: Annotated[Optional[int], Opt(help="Linear warm-up epochs.")] = None,
    epochs: Annotated[Optional[int], Opt(help="Epochs.")] = None,
    batch_size: Annotated[Optional[int], Opt(help="Training batch size.")] = None,
    eval_batch_size: Annotated[Optional[int], Opt(help="Evaluation batch size.")] = None,
    seed: Annotated[Optional[int], Opt(help="Random seed.")] = None,
    device: Annotated[Optional[str], Opt(help="auto, cpu, cuda or cuda:N.")] = None,
    precision: Annotated[Optional[str], Opt(help="fp32 or bf16 (autocast).")] = None,
    drop_last: Annotated[Optional[bool], Opt("--drop-last/--keep-last", help="Drop the last partial batch.")] = None,
    compile: Annotated[Optional[bool], Opt("--compile/--no-compile", help="torch.compile the model.")] = None,
    diverge_loss: Annotated[Optional[float], Opt(help="Train loss above which the run counts as diverged.")] = None,
    project: Annotated[str, Opt(help="W&B project.")] = "lrtrack",
    entity: Annotated[Optional[str], Opt(help="W&B entity.")] = None,
    offline: Annotated[bool, Opt("--offline", help="Log the W&B run offline (default when not logged in).")] = False,
    no_wandb: Annotated[bool, Opt("--no-wandb", help="Do not log to W&B at all.")] = False,
) -> None:
    """Train one configuration and log it to W&B (offline when not logged in)."""
    from lrtrack.cli.display import print_run_table, progress_hook
    from lrtrack.config import TRAIN_FIELDS, load_train_config, make_train_config
    from lrtrack.tracking import MemoryLogger, WandbLogger
    from lrtrack.train import run

    flags: dict[str, Any] = {k: v for k, v in locals().items() if k in TRAIN_FIELDS and v is not None}
    if config_file is not None:
        config = load_train_config(config_file, flags)
    else:
        config = make_train_config(flags, flags=True)
    logger = MemoryLogger() if no_wandb else WandbLogger(project, entity, mode="offline" if offline else None)
    with progress_hook(config) as hook:
        result = run(config, logger, on_epoch=hook)
    print_run_table(result)

