"""``lrtrack slurm``: a SLURM job array of agents for a sweep (write, print or submit its script)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from lrtrack.agent.settings import AgentSettings
from lrtrack.cli import app
from lrtrack.cli.config_options import settings_from, with_options
from lrtrack.cli.options import StoreOpt, SweepIdArg
from lrtrack.slurm import DEFAULT_OUTPUT, DEFAULT_SIGNAL


@app.command()
@with_options(flags=AgentSettings)
def slurm(
    sweep_id: SweepIdArg,
    flags: dict[str, Any],
    array: Annotated[int, typer.Option(help="Array tasks: one agent each.")] = 1,
    gpus: Annotated[int, typer.Option(help="GPUs per task (--gpus-per-task).")] = 0,
    cpus: Annotated[Optional[int], typer.Option(help="CPUs per task (--cpus-per-task).")] = None,
    partition: Annotated[Optional[str], typer.Option(help="SLURM partition.")] = None,
    account: Annotated[Optional[str], typer.Option(help="SLURM account.")] = None,
    time: Annotated[Optional[str], typer.Option(help="Time limit per task, e.g. 4:00:00.")] = None,
    constraint: Annotated[Optional[str], typer.Option(help="Node features (--constraint).")] = None,
    throttle: Annotated[Optional[int], typer.Option(help="At most this many tasks at once (--array=...%N).")] = None,
    signal: Annotated[str, typer.Option(help="Warning before the time limit (sbatch --signal).")] = DEFAULT_SIGNAL,
    requeue: Annotated[bool, typer.Option("--requeue/--no-requeue", help="Let SLURM requeue preempted tasks.")] = True,
    output: Annotated[str, typer.Option(help="Task log files (sbatch --output).")] = DEFAULT_OUTPUT,
    script: Annotated[Optional[Path], typer.Option(help="Where to write the script (default lrtrack-<ID>.sbatch).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the script; write and submit nothing.")] = False,
    submit: Annotated[bool, typer.Option("--submit", help="Submit the script with sbatch.")] = False,
    store: StoreOpt = None,
) -> None:
    """Write a SLURM job-array script running one agent per task (--submit: sbatch it).

    Each task's agent takes the AgentSettings flags given here (--count is runs per task).
    The store URL and W&B settings reach the tasks through sbatch's environment,
    never through the script or a command line.
    """
    from lrtrack.slurm import ArrayJob, find_sbatch, render_script, submit as submit_job
    from lrtrack.store import open_store

    agent = settings_from(AgentSettings, flags)
    job = ArrayJob(sweep_id, array, gpus=gpus, cpus=cpus, partition=partition, account=account,
                   time=time, constraint=constraint, throttle=throttle, signal=signal, requeue=requeue,
                   output=output, agent=agent)
    job.check()  # bad flags: one line each, before the store is opened or anything written
    if submit and not dry_run:
        find_sbatch()
    with open_store(store, create=False) as opened:
        job.sweep_id = opened.get_sweep(sweep_id).id  # unknown id: exit 2, nothing written
        store_url = opened.raw_url
    text = render_script(job)
    if dry_run:
        typer.echo(text, nl=False)
        return
    path = script or Path(f"lrtrack-{job.sweep_id}.sbatch")
    path.write_text(text)
    typer.echo(f"wrote {path}", err=True)
    if submit:
        job_id = submit_job(path, store_url)
        typer.echo(f"submitted job array {job_id} ({array} task{'s' if array != 1 else ''}) for sweep {job.sweep_id}",
                   err=True)
        typer.echo(job_id)
