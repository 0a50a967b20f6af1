"""``lrtrack agent``: run workers for a sweep on this machine (one per GPU with --gpus)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from lrtrack.agent.settings import AgentSettings
from lrtrack.cli import app
from lrtrack.cli.config_options import settings_from, with_options
from lrtrack.cli.options import StoreOpt, SweepIdArg
from lrtrack.config import settings_flags

if TYPE_CHECKING:
    from lrtrack.store import Store


@app.command()
@with_options(flags=AgentSettings)
def agent(
    sweep_id: SweepIdArg,
    flags: dict[str, Any],
    gpus: Annotated[Optional[str], typer.Option(help="0,1,... or all: one worker per GPU with CUDA_VISIBLE_DEVICES set.")] = None,
    per_gpu: Annotated[int, typer.Option(min=1, help="Workers per GPU with --gpus.")] = 1,
    workers: Annotated[int, typer.Option(min=1, help="CPU worker processes (without --gpus).")] = 1,
    pack: Annotated[int, typer.Option(min=1, help="Train up to K compatible configs together.")] = 1,
    store: StoreOpt = None,
) -> None:
    """Pull configs from a sweep and train them until the sweep is done."""
    from lrtrack.agent.supervisor import parse_gpus
    from lrtrack.store import open_store

    settings = settings_from(AgentSettings, flags)
    gpu_list = parse_gpus(gpus) if gpus else None
    with open_store(store, create=False) as opened:
        code = run_agents(opened, sweep_id, settings, gpus=gpu_list, per_gpu=per_gpu, workers=workers, pack=pack)
    if code:
        raise typer.Exit(code)


def run_agents(store: Store, sweep_id: str, settings: AgentSettings, *, gpus: list[str] | None, per_gpu: int,
               workers: int, pack: int) -> int:
    """One agent in this process, or a supervisor of several; returns the exit code."""
    from lrtrack.agent.loop import Agent
    from lrtrack.agent.signals import raise_on_stop_signals
    from lrtrack.agent.supervisor import supervise, workers_for
    from lrtrack.reporting import Reporter

    report = Reporter()

    sweep = store.get_sweep(sweep_id)  # unknown id: one clear error before any process starts
    slots = workers_for(gpus, per_gpu, workers)
    if len(slots) > 1 or gpus:
        args = _agent_args(settings, pack)
        code = supervise(sweep.id, slots, args, store.raw_url, report)
        report(f"sweep {sweep.id}: all workers exited")
        return code
    raise_on_stop_signals()
    agent = Agent(store, sweep.id, settings, report, pack=pack)
    try:
        outcome = agent.run()
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (lrtrack.agent.signals.Terminated, exit 143)
        report("agent stopped: " + ("its run could not be recorded, the store did not answer (requeued as crashed "
                                    "after the grace period)" if agent.unrecorded else
                                    "its run is marked interrupted and requeued"))
        return getattr(stop, "exit_code", 130)  # returned, not raised: Typer would turn it into 130
    report(f"agent exits: {outcome.message} ({outcome.runs} run{'s' if outcome.runs != 1 else ''} trained here)")
    return 0


def _agent_args(settings: AgentSettings, pack: int) -> list[str]:
    """The flags that give each supervised worker the same settings (those not at their default)."""
    return [*settings_flags(settings), "--pack", str(pack)]
