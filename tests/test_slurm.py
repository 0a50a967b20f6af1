"""SLURM: the job-array script, agents that understand SLURM, and a real SLURM cluster.

The cluster tests need the private one-node cluster of ``scripts/test-slurm.sh``
(``SLURM_CONF`` and ``LRTRACK_TEST_SLURM_DIR`` set; ``scripts/test.sh`` starts it) and
the test PostgreSQL server; under ``CI=true`` a missing cluster fails instead of skipping.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from clitools import assert_one_line_error, create, finished_configs, lrtrack, show, wait_for, write_sweep_spec

from lrtrack import wandb_files
from lrtrack.slurm import DEFAULT_SIGNAL, ArrayJob, SlurmTask, claiming_rank, render_script


def local_sweep(tmp_path: Path) -> tuple[str, str]:
    """A one-point sweep in an SQLite store, made in-process (fast); (store URL, sweep id)."""
    from lrtrack.config import load_spec
    from lrtrack.store import open_store
    from lrtrack.sweep import create_sweep

    store = f"sqlite:///{tmp_path}/store.db"
    with open_store(store) as opened:
        spec = write_sweep_spec(tmp_path / "g.yaml", "slurm-grid", {"lr": [0.01], "optimizer": ["adam"]}, epochs=1)
        return store, create_sweep(load_spec(spec), opened, "local").id


# ---------------------------------------------------------------- the script, without a cluster


def test_dry_run_prints_a_job_array_script_with_every_setting_and_no_secret(tmp_path):
    store, sweep_id = local_sweep(tmp_path)
    proc = lrtrack("slurm", sweep_id, "--array", "4", "--count", "2", "--gpus", "1", "--cpus", "8",
                   "--partition", "gpu", "--account", "ml", "--time", "4:00:00", "--constraint", "a100",
                   "--throttle", "2", "--heartbeat-seconds", "5", "--grace-seconds", "60", "--offline",
                   "--dry-run", "--store", store)
    assert proc.returncode == 0, proc.stderr
    script = proc.stdout
    directives = [line.removeprefix("#SBATCH ") for line in script.splitlines() if line.startswith("#SBATCH ")]
    for expected in ("--array=0-3%2", "--requeue", f"--signal={DEFAULT_SIGNAL}", "--gpus-per-task=1", "--cpus-per-task=8",
                     "--partition=gpu", "--account=ml", "--time=4:00:00", "--constraint=a100", "--ntasks=1"):
        assert expected in directives, (expected, directives)
    agent = shlex.split(next(line for line in script.splitlines() if " -m lrtrack agent " in line))
    assert agent[agent.index("agent"):] == ["agent", sweep_id, "--count", "2", "--heartbeat-seconds", "5.0",
                                            "--grace-seconds", "60.0", "--offline", "&"]
    assert "store.db" not in script and "LRTRACK_STORE=" not in script  # the URL comes from the environment
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert not list(tmp_path.glob("*.sbatch"))  # --dry-run writes nothing


def test_the_script_never_holds_a_password():
    script = render_script(ArrayJob("abc12345", 2, python="/opt/py/bin/python"))
    assert "postgresql" not in script and "WANDB_API_KEY" not in script
    assert f"--signal={DEFAULT_SIGNAL}" in script and "--array=0-1\n" in script


@pytest.mark.parametrize("args, message", [
    (["--array", "0"], "--array: must be at least 1"),
    (["--throttle", "0"], "--throttle: must be at least 1"),
    (["--partition", "a b"], "--partition: must be one word"),
    (["--count", "0"], "--count:"),  # an agent setting: checked by AgentSettings, as `lrtrack agent` does
    (["--grace-seconds", "0"], "--grace-seconds:"),
])
def test_bad_flags_are_one_line_exit_2_and_nothing_written(tmp_path, args, message):
    store, sweep_id = local_sweep(tmp_path)
    proc = lrtrack("slurm", sweep_id, *args, "--submit", "--store", store)
    assert assert_one_line_error(proc, message).startswith("error: ")
    assert not list(tmp_path.glob("*.sbatch"))


def test_submit_without_sbatch_and_an_unknown_sweep_are_one_line_exit_2(tmp_path):
    store, sweep_id = local_sweep(tmp_path)
    no_sbatch = {**os.environ, "PATH": str(tmp_path / "empty-bin")}
    proc = lrtrack("slurm", sweep_id, "--array", "2", "--submit", "--store", store, env=no_sbatch)
    assert_one_line_error(proc, "sbatch not found")
    proc = lrtrack("slurm", "nosuchid", "--array", "2", "--submit", "--store", store)
    assert_one_line_error(proc, "unknown sweep id 'nosuchid'")
    assert not list(tmp_path.glob("*.sbatch"))


def test_slurm_task_names_tags_and_ranks_from_the_environment():
    env = {"SLURM_JOB_ID": "107", "SLURM_ARRAY_JOB_ID": "100", "SLURM_ARRAY_TASK_ID": "7", "SLURM_RESTART_COUNT": "2"}
    task = SlurmTask.from_env(env)
    assert task.name == "slurm-100_7" and task.worker_suffix == "slurm-100_7-restart2"
    assert task.tags == ["slurm-job-100", "slurm-task-7"]
    assert task.wandb_config["slurm_restart_count"] == 2
    assert SlurmTask.from_env({"SLURM_JOB_ID": "5"}).tags == ["slurm-job-5"]
    assert SlurmTask.from_env({}) is None
    assert claiming_rank({"SLURM_PROCID": "0", "LOCAL_RANK": "0"}) is None
    assert claiming_rank({"SLURM_PROCID": "1"}) == "SLURM_PROCID=1"
    assert claiming_rank({"LOCAL_RANK": "3"}) == "LOCAL_RANK=3"


def test_an_agent_that_is_not_rank_0_claims_nothing(tmp_path):
    store, sweep_id = local_sweep(tmp_path)
    env = {**os.environ, "SLURM_JOB_ID": "9", "SLURM_PROCID": "1"}
    proc = lrtrack("agent", sweep_id, "--store", store, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "SLURM_PROCID=1: only rank 0 of a task claims runs" in proc.stdout
    assert show(sweep_id, store)["runs"] == []


# ---------------------------------------------------------------- a real SLURM cluster


@pytest.fixture
def slurm_cluster() -> str:
    """The private cluster of scripts/test-slurm.sh (its slurm.conf)."""
    conf = os.environ.get("SLURM_CONF")
    if not (conf and os.environ.get("LRTRACK_TEST_SLURM_DIR") and shutil.which("sbatch")):
        if os.environ.get("CI"):
            pytest.fail("CI=true but no test SLURM cluster: run scripts/test-slurm.sh start")
        pytest.skip("no test SLURM cluster (eval \"$(bash scripts/test-slurm.sh start)\")")
    return conf


def submit(sweep_id: str, store: str, cwd: Path, *args: str) -> str:
    proc = lrtrack("slurm", sweep_id, "--submit", "--offline", "--store", store, *args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def job_state(task: str) -> str | None:
    """The SLURM state of a job or array task (``RUNNING``, ``PENDING``...), None once it left the queue."""
    out = subprocess.run(["squeue", "-h", "-j", task, "-o", "%T"], capture_output=True, text=True).stdout.split()
    return out[0] if out else None




def runs_of(store: str, sweep_id: str):
    from lrtrack.store import open_store

    with open_store(store, create=False) as opened:
        return opened.runs(sweep_id)


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.xdist_group("slurm")  # one test's jobs at a time on the one-node test cluster
def test_a_job_array_of_3_runs_a_12_point_grid_exactly_once(tmp_path, offline_wandb, slurm_cluster, pg_db):
    grid = {"lr": [0.001, 0.003, 0.01, 0.03], "optimizer": ["sgd", "adam", "adamw"]}
    sweep_id = create(write_sweep_spec(tmp_path / "g.yaml", "slurm-grid", grid, epochs=1), pg_db)
    job = submit(sweep_id, pg_db, tmp_path, "--array", "3")
    assert "postgresql" not in (tmp_path / f"lrtrack-{sweep_id}.sbatch").read_text()
    wait_for(lambda: job_state(job) is None, 240, f"job array {job} to finish", interval=1)

    description = show(sweep_id, pg_db)
    counts = finished_configs(description)
    assert len(counts) == 12 and set(counts.values()) == {1}, counts
    assert len(description["runs"]) == 12  # one attempt each: nothing ran twice
    tasks = set()
    for entry in description["runs"]:
        summary = wandb_files.read_summary(wandb_files.find_run_dir(entry["wandb_run_id"], offline_wandb))
        task = next(tag for tag in summary["tags"] if tag.startswith("slurm-task-")).removeprefix("slurm-task-")
        assert f"slurm-job-{job}" in summary["tags"] and summary["state"] == "finished"
        assert f":slurm-{job}_{task}" in entry["worker"]
        tasks.add(task)
    assert tasks <= {"0", "1", "2"} and len(tasks) >= 2  # the runs were shared between tasks
    logs = "".join(path.read_text() for path in tmp_path.glob(f"lrtrack-{job}_*.out"))
    assert "Traceback" not in logs


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.xdist_group("slurm")  # one test's jobs at a time on the one-node test cluster
def test_usr1_and_scontrol_requeue_requeue_the_run_at_once_and_the_restarted_task_finishes_it(
        tmp_path, offline_wandb, slurm_cluster, pg_db):
    grid = {"lr": [0.001], "optimizer": ["adam"]}
    sweep_id = create(write_sweep_spec(tmp_path / "g.yaml", "slurm-grid", grid, epochs=80), pg_db)  # signalled at epoch 2
    job = submit(sweep_id, pg_db, tmp_path, "--array", "1")
    task = f"{job}_0"

    def interrupted(n: int):
        return lambda: sum(a.state == "interrupted" for run in runs_of(pg_db, sweep_id) for a in run.attempts) >= n

    def epochs_of_attempt(n: int):
        return lambda: any(len(a.history) >= 2 for run in runs_of(pg_db, sweep_id) for a in run.attempts
                           if a.number == n)

    # 1. The time-limit warning: USR1 to the batch shell, which forwards it to the agent.
    wait_for(epochs_of_attempt(1), 120, "the first run's second epoch")
    signalled = time.monotonic()
    subprocess.run(["scancel", "--batch", "--signal=USR1", task], check=True)
    wait_for(interrupted(1), 60, "attempt 1 interrupted")
    first_requeue = time.monotonic() - signalled
    (run,) = runs_of(pg_db, sweep_id)
    assert run.state == "pending" and run.attempts[0].state == "interrupted"  # requeued in the store at once
    # The script requeued its own task (agent exit 138 -> scontrol requeue); SLURM restarts it
    # after cred_expire (5 s in the test cluster, 120 s by default).

    # 2. SLURM requeues the running task (as preemption does): SIGTERM to every process of the job.
    wait_for(epochs_of_attempt(2), 120, "attempt 2's second epoch")
    signalled = time.monotonic()
    subprocess.run(["scontrol", "requeue", task], check=True)
    wait_for(interrupted(2), 60, "attempt 2 interrupted")
    second_requeue = time.monotonic() - signalled
    wait_for(lambda: job_state(task) is None and job_state(job) is None, 240, "the task to finish", interval=1)

    # Default grace period 120 s: only the agent's own requeue can be this fast.
    assert first_requeue < 60 and second_requeue < 60
    description = show(sweep_id, pg_db)
    counts = finished_configs(description)
    assert list(counts.values()) == [1], counts
    first = description["runs"]
    assert [e["state"] for e in first] == ["interrupted", "interrupted", "finished"]
    assert [e["attempt"] for e in first] == [1, 2, 3]
    assert first[0]["worker"].endswith(f":slurm-{task}")
    assert first[1]["worker"].endswith(f":slurm-{task}-restart1")  # SLURM_RESTART_COUNT with the attempt
    assert first[2]["worker"].endswith(f":slurm-{task}-restart2")
    summary = wandb_files.read_summary(wandb_files.find_run_dir(first[0]["wandb_run_id"], offline_wandb))
    assert summary["summary"]["state"] == "interrupted"  # the USR1 path logs the W&B run interrupted
