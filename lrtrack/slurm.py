"""Agents on SLURM: a job-array script with one agent per task, and what an agent learns from SLURM.

`render_script` writes an ``sbatch`` script for a sweep: ``--array`` tasks, each
running one ``lrtrack agent`` that claims runs from the shared store until the
sweep is done (or ``--count`` runs), with ``--requeue`` and a warning signal
before the time limit (``--signal=B:USR1@90``). The store URL and W&B settings
never appear in the script or on a command line: `submit` hands them to
``sbatch`` in its environment (``--export=ALL``), and the tasks inherit them.

Inside a task, `SlurmTask.from_env` names the worker after the job and array
task, and tags its W&B runs with them. The script forwards SIGUSR1 (time limit
near) and SIGTERM (preemption, ``scancel``, ``scontrol requeue``) to the agent,
which ends its run after the current epoch, logs it ``interrupted``, requeues it
in the store at once and exits with 128 + the signal's number; after SIGUSR1 the
script requeues its own task (``scontrol requeue``), so the restarted task goes
on claiming.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from lrtrack.agent.settings import AgentSettings
from lrtrack.config import settings_flags
from lrtrack.errors import LrtrackError, UserError

#: SLURM's warning before the time limit: SIGUSR1 to the batch shell, 90 s ahead.
DEFAULT_SIGNAL = "B:USR1@90"
#: The agent's exit code after SIGUSR1 (128 + 10): the script then requeues its task.
TIME_LIMIT_EXIT = 128 + 10
#: The tasks' log files (sbatch ``--output``): one per job and array task.
DEFAULT_OUTPUT = "lrtrack-%A_%a.out"


# ---------------------------------------------------------------- inside a task


@dataclass(frozen=True)
class SlurmTask:
    """The SLURM job (array task) this process runs in, from SLURM's environment variables."""

    job_id: str  #: ``SLURM_JOB_ID``: for an array task, the task's own job id
    array_job_id: str | None  #: ``SLURM_ARRAY_JOB_ID``: the array's id, shared by its tasks
    array_task_id: str | None  #: ``SLURM_ARRAY_TASK_ID``
    restart_count: int  #: ``SLURM_RESTART_COUNT``: how often SLURM requeued this task

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SlurmTask | None:
        """The task, or None outside SLURM."""
        job_id = env.get("SLURM_JOB_ID")
        if not job_id:
            return None
        restarts = env.get("SLURM_RESTART_COUNT", "0")
        return cls(job_id, env.get("SLURM_ARRAY_JOB_ID") or None, env.get("SLURM_ARRAY_TASK_ID") or None,
                   int(restarts) if restarts.isdigit() else 0)

    @property
    def job(self) -> str:
        """The job a user knows: the array's id for an array task, else the job id."""
        return self.array_job_id or self.job_id

    @property
    def name(self) -> str:
        """``slurm-<array job>_<task>`` (SLURM's own ``%A_%a``), or ``slurm-<job>``."""
        task = f"_{self.array_task_id}" if self.array_task_id is not None else ""
        return f"slurm-{self.job}{task}"

    @property
    def worker_suffix(self) -> str:
        """What the worker name adds: the task, and the restart count once SLURM requeued it."""
        return self.name + (f"-restart{self.restart_count}" if self.restart_count else "")

    @property
    def tags(self) -> list[str]:
        """W&B tags: ``slurm-job-<id>`` and ``slurm-task-<n>``."""
        tags = [f"slurm-job-{self.job}"]
        if self.array_task_id is not None:
            tags.append(f"slurm-task-{self.array_task_id}")
        return tags

    @property
    def wandb_config(self) -> dict[str, object]:
        return {"slurm_job_id": self.job_id, "slurm_array_job_id": self.array_job_id,
                "slurm_array_task_id": self.array_task_id, "slurm_restart_count": self.restart_count}


#: Environment variables naming a process's rank within its task (SLURM's, then torchrun's).
RANK_VARIABLES = ("SLURM_PROCID", "LOCAL_RANK")


def claiming_rank(env: Mapping[str, str] = os.environ) -> str | None:
    """None when this process may claim runs; else the variable that says it is not rank 0.
    Only one process per task claims, even when a task starts several (``srun``, torchrun)."""
    for name in RANK_VARIABLES:
        value = env.get(name)
        if value not in (None, "", "0"):
            return f"{name}={value}"
    return None


# ---------------------------------------------------------------- the job-array script


@dataclass
class ArrayJob:
    """What `render_script` writes: one agent per array task."""

    sweep_id: str
    array: int  #: number of tasks (agents)
    gpus: int = 0  #: GPUs per task (``--gpus-per-task``)
    cpus: int | None = None  #: CPUs per task
    partition: str | None = None
    account: str | None = None
    time: str | None = None  #: time limit, SLURM's syntax (``4:00:00``)
    constraint: str | None = None
    throttle: int | None = None  #: at most this many tasks at once (``%``)
    signal: str = DEFAULT_SIGNAL
    requeue: bool = True
    output: str = DEFAULT_OUTPUT
    agent: AgentSettings = field(default_factory=AgentSettings)  #: each task's agent (``--count`` runs, ...)
    python: str = field(default_factory=lambda: sys.executable)

    def check(self) -> None:
        """`UserError` naming the flag, before anything is written or submitted."""
        problems = []
        if self.array < 1:
            problems.append(f"--array: must be at least 1 (one agent per task), not {self.array}")
        if self.gpus < 0:
            problems.append(f"--gpus: must be 0 or more, not {self.gpus}")
        if self.cpus is not None and self.cpus < 1:
            problems.append(f"--cpus: must be at least 1, not {self.cpus}")
        if self.throttle is not None and self.throttle < 1:
            problems.append(f"--throttle: must be at least 1, not {self.throttle}")
        for name in ("partition", "account", "time", "constraint", "signal", "output"):
            value = getattr(self, name)
            if value is not None and (not value.strip() or any(c.isspace() for c in value)):
                problems.append(f"--{name}: must be one word, not {value!r}")
        if problems:
            raise UserError(problems)


def render_script(job: ArrayJob) -> str:
    """The ``sbatch`` script (text) for ``job``; holds no store URL and no W&B key."""
    job.check()
    throttle = f"%{job.throttle}" if job.throttle else ""
    directives = [
        f"--job-name=lrtrack-{job.sweep_id}",
        f"--array=0-{job.array - 1}{throttle}",
        "--ntasks=1",
        f"--output={job.output}",
        "--open-mode=append",  # a requeued task appends to its log instead of truncating it
    ]
    if job.requeue:
        directives.append("--requeue")
    if job.signal:
        directives.append(f"--signal={job.signal}")
    if job.gpus:
        directives.append(f"--gpus-per-task={job.gpus}")
    if job.cpus:
        directives.append(f"--cpus-per-task={job.cpus}")
    for name in ("partition", "account", "time", "constraint"):
        if (value := getattr(job, name)) is not None:
            directives.append(f"--{name}={value}")
    agent = [job.python, "-m", "lrtrack", "agent", job.sweep_id, *settings_flags(job.agent)]
    until = f"{job.agent.count} runs" if job.agent.count else "the sweep is done"
    lines = ["#!/bin/bash", *(f"#SBATCH {d}" for d in directives), f"""\
#
# lrtrack agents for sweep {job.sweep_id}: one per array task, each claiming runs from the
# shared store until {until}. The store URL (LRTRACK_STORE) and the W&B settings (WANDB_*)
# come from the environment sbatch exported at submission; they are never written here.
set -u
if [ -z "${{LRTRACK_STORE:-}}" ]; then
  echo "lrtrack: LRTRACK_STORE is not set (submit with lrtrack slurm --submit, or export it before sbatch)" >&2
  exit 2
fi

# SIGUSR1 (the time limit is near) and SIGTERM (preemption, scancel, scontrol requeue) go to
# the agent: it ends its run after the current epoch, logs it interrupted, requeues it in the
# store at once and exits with 128 + the signal's number.
agent=
forward() {{ if [ -n "$agent" ]; then kill -s "$1" "$agent" 2>/dev/null || true; fi; }}
trap 'forward USR1' USR1
trap 'forward TERM' TERM
{shlex.join(agent)} &
agent=$!
while kill -0 "$agent" 2>/dev/null; do wait "$agent"; done  # a trapped signal ends a wait early
wait "$agent"
code=$?
if [ "$code" -eq {TIME_LIMIT_EXIT} ]; then
  # Time limit near: this task goes back to the queue and, restarted, claims again.
  scontrol requeue "$SLURM_JOB_ID"
fi
exit "$code"
"""]
    return "\n".join(lines)


def submit(script_path: Path, store_url: str, env: Mapping[str, str] | None = None) -> str:
    """``sbatch --parsable --export=ALL SCRIPT`` with the store URL in its environment; the job id.

    The URL (password included) travels as ``LRTRACK_STORE`` in sbatch's
    environment, never on its command line (``ps`` shows command lines to every user).
    """
    sbatch = find_sbatch()
    environment = {**(env if env is not None else os.environ), "LRTRACK_STORE": store_url}
    proc = subprocess.run([sbatch, "--parsable", "--export=ALL", str(script_path)], env=environment,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        message = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        raise LrtrackError(f"sbatch refused the job: {message}")
    return proc.stdout.strip().split(";")[0]


def find_sbatch() -> str:
    """The ``sbatch`` command, or `UserError` (this is not a SLURM login node)."""
    sbatch = shutil.which("sbatch")
    if sbatch is None:
        raise UserError("--submit: sbatch not found on PATH (submit from a SLURM login node, or use --dry-run)")
    return sbatch
