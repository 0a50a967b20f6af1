"""``lrtrack sweep ...``: create, run, list, show, pause, resume and cancel sweeps."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from lrtrack.agent.settings import AgentSettings
from lrtrack.cli import app
from lrtrack.cli.config_options import settings_from, with_options
from lrtrack.cli.options import StoreOpt, SweepIdArg, WideOpt
from lrtrack.states import State
from lrtrack.store import DEFAULT_MAX_ATTEMPTS

sweep_app = typer.Typer(help="Create, run and inspect sweeps.", no_args_is_help=True)
app.add_typer(sweep_app, name="sweep")

SpecArg = Annotated[Path, typer.Argument(help="Sweep file in W&B's format, e.g. sweeps/study-a-fashion-fcn-adam.yaml.")]
MaxAttemptsOpt = Annotated[int, typer.Option(
    min=1, help="Failed or crashed attempts after which a run fails for good (interrupted ones never count).")]
BackendOpt = Annotated[Optional[str], typer.Option(help="local (offline, lrtrack's store) or wandb (hosted controller). Default: wandb when logged in, else local.")]


@sweep_app.command("create")
def create(spec: SpecArg, backend: BackendOpt = None, max_attempts: MaxAttemptsOpt = DEFAULT_MAX_ATTEMPTS,
           store: StoreOpt = None) -> None:
    """Register a sweep; prints its id as the last line."""
    from lrtrack.config import load_spec
    from lrtrack.store import open_store
    from lrtrack.sweep import choose_backend, create_sweep

    sweep_spec = load_spec(spec)
    _check_references(spec, sweep_spec)
    backend = choose_backend(backend)  # before the store is opened: bad input writes nothing
    with open_store(store) as opened:
        record = create_sweep(sweep_spec, opened, backend, max_attempts=max_attempts)
        typer.echo(f"created {record.backend} sweep {record.name!r} in {opened.url}", err=True)
    _describe_new_sweep(sweep_spec, backend)
    typer.echo(record.id)


def _check_references(path: Path, spec) -> None:
    """Referenced datasets and models built on one real batch before anything is written (one line
    naming the file)."""
    from lrtrack.errors import UserError
    from lrtrack.sweep import check_references

    try:
        check_references(spec)
    except UserError as exc:
        raise UserError([f"{path}: {line}" for line in exc.problems]) from None


def _describe_new_sweep(spec, backend: str) -> None:
    """The sweep's size (and a warning when nothing bounds it) and what runs a named program."""
    from lrtrack.cli import err_console
    from lrtrack.sweep import size_message

    size, warning = size_message(spec)
    typer.echo(size, err=True)
    if warning:
        err_console.print(f"warning: {warning}", markup=False)
    if spec.program or spec.command:
        named = f"program {spec.program}" if spec.program else "command"
        kept = "passed to W&B's controller" if backend == "wandb" else "kept with the sweep for W&B's controller"
        typer.echo(f"note: the {named} is {kept}; lrtrack's agents run lrtrack's training function "
                   "(lrtrack.train.run)", err=True)


@sweep_app.command("run")
@with_options(flags=AgentSettings)
def run_sweep(
    spec: SpecArg,
    flags: dict[str, Any],
    workers: Annotated[int, typer.Option(min=1, help="Agent processes on this machine.")] = 1,
    pack: Annotated[int, typer.Option(min=1, help="Train up to K compatible configs together in each agent.")] = 1,
    max_attempts: MaxAttemptsOpt = DEFAULT_MAX_ATTEMPTS,
    store: StoreOpt = None,
) -> None:
    """Create a local sweep and run agents until it is done: the one-command study."""
    from lrtrack.cli.agent import run_agents
    from lrtrack.config import load_spec
    from lrtrack.store import open_store
    from lrtrack.sweep import create_sweep

    settings = settings_from(AgentSettings, flags)  # checked before anything is written
    sweep_spec = load_spec(spec)
    _check_references(spec, sweep_spec)
    with open_store(store) as opened:
        record = create_sweep(sweep_spec, opened, "local", max_attempts=max_attempts)
        typer.echo(f"created local sweep {record.name!r} ({record.id}) in {opened.url}", err=True)
        _describe_new_sweep(sweep_spec, "local")
        code = run_agents(opened, record.id, settings, gpus=None, per_gpu=1, workers=workers, pack=pack)
    typer.echo(record.id)
    if code:
        raise typer.Exit(code)


@sweep_app.command("list")
def list_sweeps(wide: WideOpt = False, store: StoreOpt = None) -> None:
    """All sweeps in the store, with finished / running / pending / failed runs out of the total."""
    from lrtrack.cli.display import print_sweep_list
    from lrtrack.store import open_store
    from lrtrack.sweep import progress, spec_of

    with open_store(store, create=False) as opened:
        rows = [
            {"id": record.id, "name": record.name, "backend": record.backend, "state": record.state,
             "progress": progress(spec_of(record), opened.runs(record.id)),
             "created": f"{record.created_at:%Y-%m-%d %H:%M}"}
            for record in opened.list_sweeps()
        ]
    print_sweep_list(rows, wide=wide)


@sweep_app.command("show")
def show(sweep_id: SweepIdArg, as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
         wide: WideOpt = False, store: StoreOpt = None) -> None:
    """State counts and every run's config, state, attempts and metrics."""
    from lrtrack.cli.display import print_sweep
    from lrtrack.store import open_store
    from lrtrack.sweep import describe

    with open_store(store, create=False) as opened:
        description = describe(opened, sweep_id)
    if as_json:
        typer.echo(json.dumps(description, indent=2, default=str))
    else:
        print_sweep(description, wide=wide)


def _set_state(sweep_id: str, state: str, store: str | None) -> None:
    from lrtrack.store import open_store
    from lrtrack.sweep import set_state

    with open_store(store, create=False) as opened:
        record = set_state(opened, sweep_id, state)
    typer.echo(f"sweep {record.id} is {record.state}")


@sweep_app.command("pause")
def pause(sweep_id: SweepIdArg, store: StoreOpt = None) -> None:
    """Agents finish their current run, then exit."""
    _set_state(sweep_id, State.PAUSED, store)


@sweep_app.command("resume")
def resume(sweep_id: SweepIdArg, store: StoreOpt = None) -> None:
    """Let agents claim runs again."""
    _set_state(sweep_id, State.RUNNING, store)


@sweep_app.command("cancel")
def cancel(sweep_id: SweepIdArg, store: StoreOpt = None) -> None:
    """Stop the sweep: running runs stop at their next epoch, agents exit."""
    _set_state(sweep_id, State.CANCELLED, store)


@sweep_app.command("set")
def set_limits(sweep_id: SweepIdArg, max_attempts: MaxAttemptsOpt, store: StoreOpt = None) -> None:
    """Change a sweep's settings while it runs: --max-attempts (read by every agent at its next claim)."""
    from lrtrack.store import open_store

    with open_store(store, create=False) as opened:
        opened.set_max_attempts(sweep_id, max_attempts)
        record = opened.get_sweep(sweep_id)
    typer.echo(f"sweep {record.id}: max attempts {record.max_attempts}")


@sweep_app.command("retry")
def retry(
    sweep_id: SweepIdArg,
    state: Annotated[str, typer.Option(help="Comma-separated attempt states to run again.")] = "failed,crashed,interrupted",
    store: StoreOpt = None,
) -> None:
    """Run again, as new attempts, the runs whose last attempt ended in --state (one transaction)."""
    from lrtrack.store import open_store
    from lrtrack.sweep import retry as retry_runs

    states = tuple(part.strip() for part in state.split(",") if part.strip())
    with open_store(store, create=False) as opened:
        numbers = retry_runs(opened, sweep_id, states)
    shown = ", ".join(map(str, numbers)) or "none"
    typer.echo(f"sweep {sweep_id}: {len(numbers)} run{'s' if len(numbers) != 1 else ''} requeued ({shown}); "
               f"start agents to run them")
