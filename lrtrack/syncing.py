"""Upload a local sweep's offline W&B runs later, from a machine that reaches W&B."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from lrtrack.errors import LrtrackError, UserError
from lrtrack.wandb_files import find_run_dir, wandb_exe

if TYPE_CHECKING:
    from lrtrack.store import Store, SweepRecord


def offline_runs(store: Store, sweep_id: str, wandb_dir: str | os.PathLike | None = None) -> tuple[list[Path], list[str]]:
    """Folders of the sweep's W&B runs found locally, and the run ids with no folder."""
    found, missing = [], []
    for run in store.runs(sweep_id):
        for attempt in run.attempts:
            if not attempt.wandb_run_id:
                continue
            folder = find_run_dir(attempt.wandb_run_id, wandb_dir)
            (found.append(folder) if folder else missing.append(attempt.wandb_run_id))
    return found, missing


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
