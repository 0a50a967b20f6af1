"""Upload a local sweep's offline W&B runs later, from a machine that reaches W&B."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from lrtrack.errors import LrtrackError, UserError
from lrtrack.states import State
from lrtrack.wandb_files import find_run_dir, wandb_exe

if TYPE_CHECKING:
    from lrtrack.store import Store, SweepRecord


def offline_runs(store: Store, sweep_id: str, wandb_dir: str | os.PathLike | None = None) -> tuple[list[Path], list[str]]:
    """Folders of the sweep's W&B runs found locally, and the run ids with no folder.

    Run ids come from the store and are validated before they reach a glob (`find_run_dir`).
    """
    found, missing = [], []
    for run in store.runs(sweep_id):
        for attempt in run.attempts:
            if not attempt.wandb_run_id:
                continue
            folder = find_run_dir(attempt.wandb_run_id, wandb_dir)
            (found.append(folder) if folder else missing.append(attempt.wandb_run_id))
    return found, missing


def incomplete_runs(store: Store, sweep_id: str, wandb_dir: str | os.PathLike | None = None) -> list[str]:
    """One line per attempt whose local W&B run is incomplete or disagrees with the store.

    Incomplete: W&B's file has no exit record (the agent was SIGKILLed between the
    store's finish and W&B's, or W&B's disk was full). Disagreeing: the store says
    the run completed and W&B recorded a non-zero exit, or the other way round.
    Read with W&B's own reader (`lrtrack.wandb_files.read_exit`, as agents check their runs).
    """
    from lrtrack.states import SUCCESS
    from lrtrack.wandb_files import read_exit

    lines = []
    for run in store.runs(sweep_id):
        for attempt in run.attempts:
            if not attempt.wandb_run_id or attempt.state == State.RUNNING:
                continue
            folder = find_run_dir(attempt.wandb_run_id, wandb_dir)
            if folder is None:
                continue
            exit_code, problem = read_exit(folder)
            where = f"W&B run {attempt.wandb_run_id} (run {run.number} attempt {attempt.number}, {attempt.state} in the store)"
            if problem is not None:
                lines.append(f"{where}: incomplete, {problem}")
            elif (exit_code == 0) != (attempt.state in SUCCESS):
                lines.append(f"{where}: W&B recorded exit code {exit_code}")
    return lines


def sync_runs(sweep: SweepRecord, folders: list[Path], dry_run: bool = False) -> list[str]:
    """Run ``wandb sync`` over ``folders`` into the sweep's project/entity; returns the command."""
    if not folders:
        raise UserError(f"sweep {sweep.id}: no offline W&B run folders found (set --wandb-dir or WANDB_DIR)")
    command = [wandb_exe(), "sync", "--project", sweep.project]
    if sweep.entity:
        command += ["--entity", sweep.entity]
    command += [str(folder) for folder in folders]
    if not dry_run:
        proc = subprocess.run(command)
        if proc.returncode != 0:
            raise LrtrackError(f"wandb sync exited with code {proc.returncode}")
    return command
