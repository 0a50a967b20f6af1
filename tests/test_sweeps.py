"""Sweeps end to end on the local backend: real agent processes, a real SQLite store,
real offline W&B runs, W&B's own `sweeps` engine choosing the configs."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter

import pytest
from clitools import assert_one_line_error, create, finished_configs, lrtrack, show, spawn, wait_for, write_sweep_spec

from lrtrack import wandb_files

# Short enough for tests, long enough that a busy 2-core machine never misses a heartbeat.
FAST = ["--heartbeat-seconds", "0.5", "--grace-seconds", "10", "--poll-seconds", "0.5"]


def wait_for_epochs(store: str, sweep_id: str, epochs: int, runs: int = 1, timeout: float = 180) -> None:
    """Poll the store in-process (fast) until ``runs`` runs have logged ``epochs`` epochs."""
    from lrtrack.store import open_store

    with open_store(store) as opened:
        wait_for(lambda: sum(len(run.history) >= epochs for run in opened.runs(sweep_id)) >= runs, timeout,
                 f"{runs} run(s) at epoch {epochs}", interval=0.1)


@pytest.mark.slow
def test_two_agents_finish_a_grid_exactly_once_and_sweep_run_prints_the_id_last(tmp_path, offline_wandb):
    # `sweep run --workers 2` starts two `lrtrack agent` processes that race for the grid's
    # points: one multi-agent run checked for exactly-once, W&B's files and the CLI's output.
    store = f"sqlite:///{tmp_path}/store.db"
    lrs = [0.001, 0.01, 0.05]
    spec = write_sweep_spec(tmp_path / "grid.yaml", "test-grid", {"lr": lrs}, epochs=2)
    proc = lrtrack("sweep", "run", str(spec), "--workers", "2", "--store", store)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("agent exits:") == 2 and proc.stdout.count("exited with code 0") == 2, proc.stdout
    sweep_id = proc.stdout.strip().splitlines()[-1]

    description = show(sweep_id, store)
    assert finished_configs(description) == Counter(json.dumps({"lr": lr}) for lr in lrs)
    assert description["sweep"]["state"] == "finished"
    assert len(description["runs"]) == 3
    for entry in description["runs"]:
        run_dir = wandb_files.find_run_dir(entry["wandb_run_id"], offline_wandb)
        summary = wandb_files.read_summary(run_dir)
        assert summary["state"] == "finished"
        assert summary["config"]["lr"] == entry["config"]["lr"]
        assert summary["summary"]["val/acc"] == pytest.approx(entry["metrics"]["val/acc"])
        rows = wandb_files.history_rows(wandb_files.read_records(run_dir))
        assert [row["epoch"] for row in rows] == [1, 2]

    listing = lrtrack("sweep", "list", "--store", store)
    (row,) = [line.split() for line in listing.stdout.splitlines() if sweep_id in line]
    assert row[3:7] == ["3/3", "0", "0", "0"]  # finished, running, pending, failed
    table = lrtrack("sweep", "show", sweep_id, "--store", store)
    assert table.returncode == 0 and "finished" in table.stdout


@pytest.mark.slow
def test_killed_agent_is_detected_by_heartbeat_and_its_run_finished_by_another(tmp_path, offline_wandb, store_url):
    # The victim stops itself (SIGSTOP, heartbeat thread included) right after its 2nd epoch is
    # stored (lrtrack.faults), then gets a real SIGKILL: the kill lands mid-run at a known epoch
    # however loaded the machine is, so 4 epochs suffice. The agents' grace is short (3 s): the
    # rescuer starts after the kill and is the only live agent, so nothing alive can look stale.
    grace = 3.0
    agent_args = ["--store", store_url, "--heartbeat-seconds", "0.5", "--grace-seconds", str(grace),
                  "--poll-seconds", "0.5"]
    sweep_id = create(write_sweep_spec(tmp_path / "grid.yaml", "test-grid", {"lr": [0.001, 0.003]}, epochs=4), store_url)
    victim = spawn("agent", sweep_id, *agent_args, env={**os.environ, "LRTRACK_FAULT": "epoch@2:SIGSTOP"})
    wait_for_epochs(store_url, sweep_id, 2)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL

    rescuer = lrtrack("agent", sweep_id, *agent_args)
    assert rescuer.returncode == 0, rescuer.stderr
    description = show(sweep_id, store_url)
    assert finished_configs(description) == Counter(json.dumps({"lr": lr}) for lr in [0.001, 0.003])
    (crashed,) = [e for e in description["runs"] if e["state"] == "crashed"]
    assert crashed["attempt"] == 1 and crashed["epochs"] == 2
    (retried,) = [e for e in description["runs"] if e["config"] == crashed["config"] and e["attempt"] == 2]
    assert retried["state"] == "finished" and retried["epochs"] == 4
    assert retried["wandb_run_id"] != crashed["wandb_run_id"]

    # Declared dead by the database clock: its last heartbeat is at least the grace
    # period before the moment another agent requeued it.
    from sqlalchemy import create_engine, text

    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        silent = conn.execute(text(
            "SELECT a.ended_at - a.heartbeat_at FROM lrtrack_attempts a WHERE a.state = 'crashed'")).scalar_one()
    engine.dispose()
    assert silent >= grace


@pytest.mark.slow
def test_eight_agents_on_a_24_point_grid(tmp_path, offline_wandb):
    store = f"sqlite:///{tmp_path}/store.db"
    lrs = [round(0.001 * (i + 1), 4) for i in range(8)]
    spec = write_sweep_spec(tmp_path / "grid.yaml", "grid24", {"lr": lrs, "optimizer": ["sgd", "adam", "rmsprop"]},
                            epochs=1, train_size=300)
    sweep_id = create(spec, store)
    # No agent dies here, so a long grace costs nothing; with FAST's 10 s, nine processes starved on
    # a loaded 2-core machine once missed heartbeats and 3 runs were (rightly) superseded and rerun.
    settings = ["--heartbeat-seconds", "0.5", "--grace-seconds", "120", "--poll-seconds", "0.5"]
    agents = [spawn("agent", sweep_id, "--store", store, *settings) for _ in range(8)]
    for agent in agents:
        _, err = agent.communicate(timeout=500)
        assert agent.returncode == 0, err
    description = show(sweep_id, store)
    finished = finished_configs(description)
    assert len(finished) == 24 and set(finished.values()) == {1}
    assert len(description["runs"]) == 24  # no extra attempts: nothing crashed, nothing doubled


@pytest.mark.slow
def test_hyperband_stops_a_clearly_worse_run(tmp_path, offline_wandb):
    # One agent runs the grid in order, best lr first: at epoch 1 the third and fourth runs
    # fall below hyperband's threshold (W&B's `sweeps.stop_runs`, min_iter 1, eta 2).
    store = f"sqlite:///{tmp_path}/store.db"
    hyperband = {"early_terminate": {"type": "hyperband", "min_iter": 1, "eta": 2}}
    spec = write_sweep_spec(tmp_path / "hb.yaml", "test-grid", {"lr": [0.1, 0.01, 0.001, 0.0001]}, more=hyperband,
                            epochs=4, optimizer="sgd")
    sweep_id = create(spec, store)
    proc = lrtrack("agent", sweep_id, "--store", store, *FAST)
    assert proc.returncode == 0, proc.stderr
    runs = {e["config"]["lr"]: e for e in show(sweep_id, store)["runs"]}
    assert runs[0.1]["state"] == "finished" and runs[0.1]["epochs"] == 4
    stopped = [e for e in runs.values() if e["state"] == "early-stopped"]
    assert stopped, {lr: (e["state"], e["metrics"]["val/acc"]) for lr, e in runs.items()}
    assert all(e["epochs"] < 4 and e["config"]["lr"] <= 0.001 for e in stopped)
    assert "stopped early by hyperband" in proc.stdout


def test_a_wandb_form_sweep_runs_quietly_with_a_line_per_run_start_epoch_and_end(tmp_path, offline_wandb):
    """Issue 18's W&B-form file registers as is; the agent prints no W&B banner, one start and
    one end line per run and one line per epoch (not a terminal); tables fit 80 columns."""
    spec = tmp_path / "lr-digits.yaml"
    spec.write_text("program: train.py\nmethod: grid\nmetric: {name: val/acc, goal: maximize}\nparameters:\n"
                    "  lr: {values: [0.1, 0.01, 0.001]}\n  dataset: {value: digits}\n  epochs: {value: 1}\n")
    store = f"sqlite:///{tmp_path}/store.db"
    env = {k: v for k, v in os.environ.items() if k not in ("WANDB_SILENT", "WANDB_CONSOLE")}  # W&B as users have it
    env["COLUMNS"] = "80"
    proc = lrtrack("sweep", "create", str(spec), "--store", store, "--backend", "local", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "runs: 3 (grid of 3 lr)" in proc.stderr
    assert "program train.py" in proc.stderr and "lrtrack's training function" in proc.stderr
    sweep_id = proc.stdout.strip().splitlines()[-1]

    proc = lrtrack("agent", sweep_id, "--store", store, *FAST, env=env)
    assert proc.returncode == 0, proc.stderr
    output = proc.stdout + proc.stderr
    assert "wandb:" not in output and "Tracking run" not in output and "wandb sync" not in output, output
    lines = proc.stdout.splitlines()
    for number in (1, 2, 3):
        run = f"run {number} attempt 1"
        (start,) = [line for line in lines if line.startswith(f"{run} started: ")]
        assert "1 epoch (W&B run " in start and ", offline)" in start
        (epoch,) = [line for line in lines if line.startswith(f"{run} epoch 1/1: ")]
        assert "train loss " in epoch and "val acc " in epoch
        (end,) = [line for line in lines if line.startswith(f"{run} finished: val/acc ")]
        assert "wandb/offline-run-" in end
    assert len(lines) == 3 * 3 + 1  # start, epoch, end per run; the agent's exit line

    description = show(sweep_id, store)
    assert description["sweep"]["name"] == "lr-digits"
    assert description["sweep"]["progress"] == {"finished": 3, "running": 0, "pending": 0, "failed": 0,
                                                "cancelled": 0, "total": 3}
    for args in (["sweep", "show", sweep_id], ["sweep", "list"]):
        table = lrtrack(*args, "--store", store, env=env)
        assert table.returncode == 0, table.stderr
        assert "…" not in table.stdout and max(map(len, table.stdout.splitlines())) <= 80, table.stdout
    table = lrtrack("sweep", "show", sweep_id, "--store", store, env=env).stdout
    assert "3/3 finished, 0 running, 0 pending, 0 failed" in table
    assert all(entry["wandb_run_id"] in table for entry in description["runs"])  # ids in full


def test_paused_and_cancelled_sweeps_make_agents_exit_0_saying_why(tmp_path, offline_wandb):
    store = f"sqlite:///{tmp_path}/store.db"
    sweep_id = create(write_sweep_spec(tmp_path / "g.yaml", "test-grid", {"lr": [0.01, 0.02]}, epochs=1), store)
    assert lrtrack("sweep", "pause", sweep_id, "--store", store).returncode == 0
    proc = lrtrack("agent", sweep_id, "--store", store, *FAST)
    assert proc.returncode == 0 and f"the sweep is paused (lrtrack sweep resume {sweep_id} to continue)" in proc.stdout
    assert show(sweep_id, store)["runs"] == []
    assert lrtrack("sweep", "resume", sweep_id, "--store", store).returncode == 0
    proc = lrtrack("agent", sweep_id, "--store", store, "--count", "1", *FAST)
    assert proc.returncode == 0 and len(show(sweep_id, store)["runs"]) == 1
    assert lrtrack("sweep", "cancel", sweep_id, "--store", store).returncode == 0
    proc = lrtrack("agent", sweep_id, "--store", store, *FAST)
    assert proc.returncode == 0 and "cancelled" in proc.stdout
    assert len(show(sweep_id, store)["runs"]) == 1


def test_sigterm_stops_the_run_cleanly_and_requeues_it(tmp_path, offline_wandb):
    store = f"sqlite:///{tmp_path}/store.db"
    # never done before the signal
    sweep_id = create(write_sweep_spec(tmp_path / "g.yaml", "test-grid", {"lr": [0.001]}, epochs=2000), store)
    agent = spawn("agent", sweep_id, "--store", store, *FAST)
    wait_for_epochs(store, sweep_id, 1)
    agent.send_signal(signal.SIGTERM)
    agent.communicate(timeout=60)
    assert agent.returncode == 143
    (entry,) = show(sweep_id, store)["runs"]
    assert entry["state"] == "interrupted" and entry["run_state"] == "pending"
    summary = wandb_files.read_summary(wandb_files.find_run_dir(entry["wandb_run_id"], offline_wandb))
    assert summary["summary"]["state"] == "interrupted"


@pytest.mark.parametrize(
    "args, message",
    [
        (["sweep", "show", "nosuchid"], "unknown sweep id 'nosuchid'"),
        (["agent", "nosuchid"], "unknown sweep id 'nosuchid'"),
        (["sweep", "show", "x", "--store", "mysql://nowhere/db"], "mysql://nowhere/db"),
    ],
)
def test_bad_ids_and_urls_exit_2_with_one_line(tmp_path, args, message):
    from lrtrack.store import open_store

    if "--store" not in args:
        store = f"sqlite:///{tmp_path}/store.db"
        open_store(store).close()  # an existing store without that sweep
        args = [*args, "--store", store]
    assert_one_line_error(lrtrack(*args), message)


@pytest.mark.parametrize("args", [
    ["sweep", "show", "abcd1234"],
    ["sweep", "show", "abcd1234", "--json"],
    ["sweep", "list"],
    ["sweep", "pause", "abcd1234"],
    ["sweep", "resume", "abcd1234"],
    ["sweep", "cancel", "abcd1234"],
    ["report", "abcd1234"],
    ["report", "abcd1234", "--html", "r.html"],
    ["agent", "abcd1234"],
    ["sync", "abcd1234", "--dry-run"],
])
def test_commands_on_a_missing_store_exit_2_and_create_nothing(tmp_path, args):
    store_file = tmp_path / "new" / "store.db"
    proc = lrtrack(*args, "--store", f"sqlite:///{store_file}")
    line = assert_one_line_error(proc)
    assert line == (f"error: --store sqlite:///{store_file}: no store there "
                    "(create a sweep first with lrtrack sweep create)")
    assert proc.stdout == ""
    assert not store_file.parent.exists()  # no file, not even its folder
    assert not (tmp_path / "r.html").exists()


def test_the_default_store_is_not_created_by_show_and_an_empty_file_is_no_store(tmp_path):
    proc = lrtrack("sweep", "show", "abcd1234")  # cwd is tmp_path (conftest): the default .lrtrack/store.db
    assert_one_line_error(proc, "--store sqlite:///.lrtrack/store.db: no store there")
    assert not (tmp_path / ".lrtrack").exists()
    empty = tmp_path / "empty.db"
    empty.touch()
    proc = lrtrack("report", "abcd1234", "--store", str(empty))  # a plain path
    assert_one_line_error(proc, f"--store sqlite:///{empty}: no store there")
    assert empty.read_bytes() == b"" and sorted(p.name for p in tmp_path.iterdir() if "empty" in p.name) == ["empty.db"]


def test_bad_spec_changes_nothing_in_the_store(tmp_path):
    store_file = tmp_path / "store.db"
    good = write_sweep_spec(tmp_path / "good.yaml", "test-grid", {"lr": [0.01]}, epochs=2)
    create(good, f"sqlite:///{store_file}")
    before = store_file.read_bytes()
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nparameters:\n  optimizer: {values: [adam, adamm]}\n")
    proc = lrtrack("sweep", "create", str(bad), "--store", f"sqlite:///{store_file}")
    assert_one_line_error(proc, str(bad), "parameters.optimizer")
    assert store_file.read_bytes() == before


def test_corrupt_store_file_is_one_clear_error(tmp_path):
    store_file = tmp_path / "store.db"
    store_file.write_bytes(b"this is not a database" * 100)
    proc = lrtrack("sweep", "list", "--store", f"sqlite:///{store_file}")
    assert_one_line_error(proc, str(store_file))
    assert store_file.read_bytes() == b"this is not a database" * 100


def test_sync_dry_run_lists_every_attempts_run_folder(tmp_path, offline_wandb):
    store = f"sqlite:///{tmp_path}/store.db"
    spec = write_sweep_spec(tmp_path / "g.yaml", "test-grid", {"lr": [0.01, 0.02]}, epochs=1)
    proc = lrtrack("sweep", "run", str(spec), "--store", store)
    assert proc.returncode == 0, proc.stderr
    sweep_id = proc.stdout.strip().splitlines()[-1]
    proc = lrtrack("sync", sweep_id, "--store", store, "--dry-run")  # WANDB_DIR: the offline_wandb fixture's
    assert proc.returncode == 0, proc.stderr
    for entry in show(sweep_id, store)["runs"]:
        assert entry["wandb_run_id"] in proc.stdout
    assert " sync " in proc.stdout and "--project lrtrack" in proc.stdout


def test_worker_slots_one_per_gpu_with_cuda_visible_devices():
    from lrtrack.agent.supervisor import workers_for

    slots = workers_for(["0", "3"], per_gpu=2, cpu_workers=1)
    assert [(w.name, w.env["CUDA_VISIBLE_DEVICES"]) for w in slots] == [
        ("gpu0.0", "0"), ("gpu0.1", "0"), ("gpu3.0", "3"), ("gpu3.1", "3")]
    assert [w.name for w in workers_for(None, per_gpu=1, cpu_workers=3)] == ["cpu0", "cpu1", "cpu2"]


def test_supervisor_starts_a_worker_per_gpu_and_reports_each_exit(tmp_path, offline_wandb):
    # No GPU here: each worker gets its own CUDA_VISIBLE_DEVICES and trains on the CPU.
    store = f"sqlite:///{tmp_path}/store.db"
    sweep_id = create(write_sweep_spec(tmp_path / "g.yaml", "test-grid", {"lr": [0.01, 0.02]}, epochs=1), store)
    proc = lrtrack("agent", sweep_id, "--gpus", "0,1", "--store", store, *FAST)
    assert proc.returncode == 0, proc.stderr
    for name in ("gpu0.0", "gpu1.0"):
        assert f"worker {name} (pid" in proc.stdout and "exited with code 0" in proc.stdout
    description = show(sweep_id, store)
    assert len(finished_configs(description)) == 2
    assert all(":gpu" in entry["worker"] for entry in description["runs"])


def test_supervisor_forwards_sigterm_and_every_run_is_requeued(tmp_path, offline_wandb):
    store = f"sqlite:///{tmp_path}/store.db"
    # 2000 epochs (~20 s each): no run can finish while a loaded machine starts the other worker
    sweep_id = create(write_sweep_spec(tmp_path / "g.yaml", "test-grid", {"lr": [0.001, 0.002]}, epochs=2000), store)
    supervisor = spawn("agent", sweep_id, "--workers", "2", "--store", store, *FAST)
    wait_for_epochs(store, sweep_id, 1, runs=2)
    supervisor.send_signal(signal.SIGTERM)
    out, _ = supervisor.communicate(timeout=120)
    assert supervisor.returncode == 143
    assert out.count("exited with code 143") == 2
    entries = show(sweep_id, store)["runs"]
    assert len(entries) == 2 and {(e["state"], e["run_state"]) for e in entries} == {("interrupted", "pending")}


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the point of the test
def test_a_stop_signal_swallowed_by_a_finalizer_is_raised_again_at_the_next_check():
    from lrtrack.agent import signals

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    class Finalizer:
        def __del__(self):
            signal.raise_signal(signal.SIGTERM)  # Terminated is raised in here: Python only prints it

    try:
        signals.raise_on_stop_signals()
        Finalizer()
        with pytest.raises(signals.Terminated):
            signals.check_stop()
    finally:
        signals.reset()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def test_wandb_backend_offline_is_one_clear_error_and_stores_nothing(tmp_path):
    store = f"sqlite:///{tmp_path}/store.db"
    spec = write_sweep_spec(tmp_path / "g.yaml", "test-grid", {"lr": [0.01]}, epochs=2)
    proc = lrtrack("sweep", "create", str(spec), "--backend", "wandb", "--store", store)
    assert_one_line_error(proc, "--backend wandb", "--backend local")
    assert not (tmp_path / "store.db").exists()  # refused before the store was opened
