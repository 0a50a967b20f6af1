"""Fault injection: every window in which a run could be lost or counted twice, hit on purpose.

Real agent processes, a real store, real offline W&B runs. Faults land at named points
of an agent's work through the ``LRTRACK_FAULT`` test hook (`lrtrack.faults`), or from
outside (SIGSTOP/SIGCONT, a deleted store file, an unusable W&B directory, a PostgreSQL
connection dropped around COMMIT by a proxy, `pgproxy`). Each test of agents ends with
`assert_exactly_once`: every grid point finished once in the store, no attempt left
``running``, nothing counted twice, and every attempt's W&B run agreeing with the store
(exit code 0 exactly for the runs the store says completed), read back with
``wandb leet inspect --summary --json``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from clitools import (assert_one_line_error, create, lrtrack, only_run_dir, process_state, show, wait_for,
                      write_sweep_spec)
from pgproxy import CommitDropper

from lrtrack import wandb_files
from lrtrack.store import open_store
from lrtrack.states import SUCCESS

# A busy 2-core machine can starve a process for a second or two: the grace period is
# 5 s, heartbeats every 0.5 s, so only a stopped agent (SIGSTOP, SIGKILL) goes stale.
FAST = ["--heartbeat-seconds", "0.5", "--grace-seconds", "5", "--poll-seconds", "0.3"]


def agent_cmd(sweep_id: str, store: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "lrtrack", "agent", sweep_id, "--store", store, *FAST, *args]


def run_agent(sweep_id: str, store: str, *args: str, fault: str | None = None, timeout: float = 300):
    env = {**os.environ, **({"LRTRACK_FAULT": fault} if fault else {})}
    return subprocess.run(agent_cmd(sweep_id, store, *args), capture_output=True, text=True, env=env, timeout=timeout)


def spawn_agent(sweep_id: str, store: str, *args: str, fault: str | None = None) -> subprocess.Popen:
    env = {**os.environ, **({"LRTRACK_FAULT": fault} if fault else {})}
    return subprocess.Popen(agent_cmd(sweep_id, store, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def wandb_exit_codes(store: str, sweep_id: str, wandb_dir: Path) -> dict[str, int | None]:
    """W&B run id -> the exit code W&B recorded (None: no exit record), for every attempt with a folder."""
    with open_store(store, create=False) as opened:
        ids = [a.wandb_run_id for r in opened.runs(sweep_id) for a in r.attempts if a.wandb_run_id]
    folders = {run_id: wandb_files.find_run_dir(run_id, wandb_dir) for run_id in ids}
    folders = {run_id: folder for run_id, folder in folders.items() if folder is not None}
    with ThreadPoolExecutor(4) as pool:
        summaries = dict(zip(folders, pool.map(wandb_files.read_summary, folders.values())))
    return {run_id: summary.get("exit_code") for run_id, summary in summaries.items()}


def assert_exactly_once(store: str, sweep_id: str, wandb_dir: Path, points: int, *, failed: int = 0,
                        incomplete: tuple[str, ...] = ()) -> list:
    """Every grid point ended once (``failed`` of them failed for good, the rest finished
    by exactly one attempt), none running, and W&B agreeing with the store. Returns the runs."""
    with open_store(store, create=False) as opened:
        runs = opened.runs(sweep_id)
    assert len(runs) == points and len({json.dumps(r.config, sort_keys=True) for r in runs}) == points
    assert sorted(r.state for r in runs) == sorted(["failed"] * failed + ["finished"] * (points - failed))
    for run in runs:
        states = [a.state for a in run.attempts]
        assert "running" not in states, states
        assert states.count("finished") == (run.state == "finished"), states  # nothing counted twice
    codes = wandb_exit_codes(store, sweep_id, wandb_dir)
    for run in runs:
        for attempt in run.attempts:
            if attempt.wandb_run_id not in codes:
                continue  # stopped before W&B's run was created
            code = codes[attempt.wandb_run_id]
            if attempt.wandb_run_id in incomplete:
                assert code is None
                continue
            assert code is not None, f"W&B run {attempt.wandb_run_id} ({attempt.state}) has no exit record"
            assert (code == 0) == (attempt.state in SUCCESS), (attempt.state, code)
    return runs


@pytest.mark.slow
def test_a_stop_signal_at_every_point_leaves_each_attempt_recorded_once(tmp_path, offline_wandb):
    """One agent per named point, each SIGTERMed there, all at once on their own grid points,
    plus one SIGKILLed between the store's finish and W&B's; then a clean agent.

    The claim, W&B init and epoch windows end interrupted and requeued (never a failure: a
    SIGTERM during training is held to the end of the epoch, then stops the run); a signal
    after the last epoch (the checkpoint save) or while the attempt is being recorded waits
    until it is recorded (finished), and the agent still exits 143. The
    SIGKILLed run is finished in the store, never retrained, and `sync` flags its W&B file."""
    from lrtrack.faults import POINTS

    store = f"sqlite:///{tmp_path}/store.db"
    faults = [f"{point}:SIGTERM" for point in POINTS] + ["wandb-finish:SIGKILL"]
    lrs = [0.01 * (i + 1) for i in range(len(faults))]
    sweep_id = create(write_sweep_spec(tmp_path / "grid.yaml", "faults", {"lr": lrs}, epochs=1), store)
    agents = {fault: spawn_agent(sweep_id, store, "--count", "1", fault=fault) for fault in faults}
    for fault, proc in agents.items():
        out, err = proc.communicate(timeout=300)
        if fault.endswith("SIGKILL"):
            assert proc.returncode == -signal.SIGKILL
            continue
        assert proc.returncode == 143, (fault, out, err)
        assert "agent stopped" in out, (fault, out, err)
    killed = agents["wandb-finish:SIGKILL"].pid
    with open_store(store, create=False) as opened:  # its run may be one another agent's signal requeued
        ((killed_run, killed_attempt),) = [(r, a) for r in opened.runs(sweep_id) for a in r.attempts
                                           if a.worker.endswith(f":{killed}")]
    killed_id = killed_attempt.wandb_run_id
    assert killed_attempt.state == "finished" == killed_run.state  # the store's finish came first

    clean = run_agent(sweep_id, store)
    assert clean.returncode == 0, clean.stderr
    runs = assert_exactly_once(store, sweep_id, offline_wandb, len(faults), incomplete=(killed_id,))
    states = sorted(a.state for r in runs for a in r.attempts)
    # claim, wandb-init, epoch: interrupted; the others finished where they were
    assert states.count("interrupted") == 3 and states.count("finished") == len(faults)
    sync = lrtrack("sync", sweep_id, "--dry-run", "--store", store)
    assert sync.returncode == 0, sync.stderr
    assert (f"W&B run {killed_id} (run {killed_run.number} attempt {killed_attempt.number}, finished in the store): "
            "incomplete") in sync.stderr


@pytest.mark.slow
def test_an_exception_fails_the_attempt_and_the_same_error_again_and_again_stops_the_agent(tmp_path, offline_wandb):
    store = f"sqlite:///{tmp_path}/store.db"
    sweep_id = create(write_sweep_spec(tmp_path / "grid.yaml", "faults", {"lr": [0.01, 0.02, 0.03]}, epochs=1), store)
    lrtrack("sweep", "set", sweep_id, "--max-attempts", "2", "--store", store, check=True)
    broken = run_agent(sweep_id, store, fault="epoch:raise")
    assert broken.returncode == 1
    assert broken.stderr.strip().splitlines()[-1] == (
        "error: 3 runs in a row failed with the same error, stopping: RuntimeError: injected fault at epoch")
    assert "Traceback" not in broken.stderr
    # run 1 failed twice (its limit), run 2 once (requeued); the third identical failure stopped the agent
    description = show(sweep_id, store)
    failed = [e for e in description["runs"] if e["state"] == "failed"]
    assert [(e["run"], e["attempt"]) for e in failed] == [(1, 1), (1, 2), (2, 1)]
    assert all(e["error"] == "RuntimeError: injected fault at epoch" for e in failed)
    for entry in failed:
        traceback = Path(entry["metrics"]["traceback"]).read_text()
        assert "fault_point" in traceback and traceback.rstrip().endswith("RuntimeError: injected fault at epoch")
    table = lrtrack("sweep", "show", sweep_id, "--store", store, env={**os.environ, "COLUMNS": "250"})
    assert "RuntimeError: injected fault at epoch" in table.stdout

    assert run_agent(sweep_id, store).returncode == 0  # the fault is gone: the rest of the grid finishes
    assert_exactly_once(store, sweep_id, offline_wandb, 3, failed=1)
    report = lrtrack("report", sweep_id, "--store", store)
    assert report.returncode == 0, report.stderr
    assert "failed after 1 epoch(s): RuntimeError: injected fault at epoch" in report.stdout


def test_preflight_a_missing_device_or_an_unwritable_wandb_dir_exits_2_before_claiming(tmp_path):
    store = f"sqlite:///{tmp_path}/store.db"
    cuda = create(write_sweep_spec(tmp_path / "cuda.yaml", "faults", {"lr": [0.01]}, epochs=1, device="cuda:7"), store)
    assert assert_one_line_error(run_agent(cuda, store)).startswith("error: device 'cuda:7': ")
    (tmp_path / "not-a-dir").write_text("")
    cpu = create(write_sweep_spec(tmp_path / "g.yaml", "faults", {"lr": [0.01]}, epochs=1), store)
    proc = subprocess.run(agent_cmd(cpu, store), capture_output=True, text=True,
                          env={**os.environ, "WANDB_DIR": str(tmp_path / "not-a-dir")})
    assert_one_line_error(proc, "error: WANDB_DIR", "W&B cannot write there")
    with open_store(store, create=False) as opened:
        assert all(not opened.runs(s.id) for s in opened.list_sweeps())  # nothing claimed


@pytest.mark.slow
def test_packed_members_are_recorded_one_by_one(tmp_path, offline_wandb):
    """--pack 2, members of 1 and 3 epochs; SIGTERM in epoch 2: the 1-epoch member stays finished."""
    store = f"sqlite:///{tmp_path}/store.db"
    sweep_id = create(write_sweep_spec(tmp_path / "grid.yaml", "faults", {"lr": [0.01], "epochs": [1, 3]}), store)
    stopped = run_agent(sweep_id, store, "--pack", "2", fault="epoch@3:SIGTERM")  # hits: e1 A, e1 B, e2 B
    assert stopped.returncode == 143, stopped.stderr
    assert run_agent(sweep_id, store).returncode == 0
    runs = assert_exactly_once(store, sweep_id, offline_wandb, 2)
    attempts = {r.config["epochs"]: [a.state for a in r.attempts] for r in runs}
    assert attempts == {1: ["finished"], 3: ["interrupted", "finished"]}


def test_a_takeover_after_sigstop_and_a_late_finish_count_once(tmp_path, offline_wandb):
    store = f"sqlite:///{tmp_path}/store.db"
    sweep_id = create(write_sweep_spec(tmp_path / "grid.yaml", "faults", {"lr": [0.01]}, epochs=3), store)
    slow = spawn_agent(sweep_id, store, fault="epoch@1:SIGSTOP")
    wait_for(lambda: _epochs(store, sweep_id) >= 1, 120, "the first epoch in the store")
    rescuer = run_agent(sweep_id, store)  # waits out the grace period, takes the run over, finishes it
    assert rescuer.returncode == 0, rescuer.stderr
    slow.send_signal(signal.SIGCONT)
    out, err = slow.communicate(timeout=120)
    assert slow.returncode == 0, err
    assert "superseded" in out
    (run,) = assert_exactly_once(store, sweep_id, offline_wandb, 1)
    assert [a.state for a in run.attempts] == ["superseded", "finished"]


def test_a_deleted_store_stops_the_agent_with_an_error(tmp_path, offline_wandb):
    path = tmp_path / "store.db"
    store = f"sqlite:///{path}"
    sweep_id = create(write_sweep_spec(tmp_path / "grid.yaml", "faults", {"lr": [0.01]}, epochs=400), store)
    proc = spawn_agent(sweep_id, store)
    wait_for(lambda: _epochs(store, sweep_id) >= 2, 120, "the second epoch in the store")
    path.unlink()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, (out, err)
    assert "the file was deleted while in use" in err and "Traceback" not in err
    assert not path.exists()  # no new, empty store written into
    assert wandb_files.read_summary(only_run_dir(offline_wandb))["exit_code"] == 1  # W&B's run closed as failed


#: What the proxy (tests/pgproxy.py) recognises each transaction by: the statement only it runs.
CREATE_SWEEP = r"^INSERT INTO lrtrack_sweeps "
CLAIM = r"^INSERT INTO lrtrack_attempts "
FINISH = r"^UPDATE lrtrack_attempts SET state=\S+, ended_at="


@pytest.mark.postgres
def test_a_sweep_create_whose_commit_ack_is_lost_creates_one_sweep(tmp_path, pg_db):
    """Scenario 11 with a real dropped connection: the first try of the sweep's INSERT is cut
    off before its COMMIT (rolled back), the second commits and loses the acknowledgement;
    the third finds the sweep id it drew already there. One sweep, and the command says it."""
    with CommitDropper(pg_db) as proxy:
        proxy.arm(CREATE_SWEEP, ["before", "after"])
        spec = write_sweep_spec(tmp_path / "grid.yaml", "faults", {"lr": [0.01, 0.02]}, epochs=1)
        proc = lrtrack("sweep", "create", str(spec), "--store", proxy.url, "--backend", "local")
    assert proc.returncode == 0, proc.stderr
    assert [(d.when, d.tag) for d in proxy.drops] == [("before", None), ("after", "COMMIT")]
    with open_store(pg_db, create=False) as opened:
        assert [s.id for s in opened.list_sweeps()] == [proc.stdout.strip().splitlines()[-1]]


@pytest.mark.slow
@pytest.mark.postgres
def test_agents_whose_claim_and_finish_commit_acks_are_lost_run_each_point_once(tmp_path, offline_wandb, pg_db):
    """Scenario 11 for real agents on PostgreSQL, through a proxy that drops their connections
    around COMMIT: claims and finishes whose COMMIT went through but whose acknowledgement
    was lost (retried: the claim finds its token, the finish finds its attempt ended), and
    one of each cut off before COMMIT (rolled back, retried as new). Every point is claimed
    by exactly one attempt and finished once, and W&B agrees."""
    spec = write_sweep_spec(tmp_path / "grid.yaml", "faults", {"lr": [0.01, 0.02, 0.03]}, epochs=1)
    sweep_id = create(spec, pg_db)
    with CommitDropper(pg_db) as proxy:
        proxy.arm(CLAIM, ["after", "before", "after"])
        proxy.arm(FINISH, ["after", "before", "after"])
        # No attempt may go stale here, even on a loaded machine: a long grace period.
        agents = [spawn_agent(sweep_id, proxy.url, "--grace-seconds", "60") for _ in range(2)]
        for agent in agents:
            out, err = agent.communicate(timeout=300)
            assert agent.returncode == 0, (out, err)
    assert proxy.pending() == 0  # every drop asked for happened
    drops = Counter((d.statement.split()[0], d.when, d.tag) for d in proxy.drops)
    assert drops == {("INSERT", "after", "COMMIT"): 2, ("INSERT", "before", None): 1,
                     ("UPDATE", "after", "COMMIT"): 2, ("UPDATE", "before", None): 1}
    runs = assert_exactly_once(pg_db, sweep_id, offline_wandb, 3)
    assert [[a.state for a in r.attempts] for r in runs] == [["finished"]] * 3  # no claim twice, none lost


def _epochs(store: str, sweep_id: str) -> int:
    with open_store(store, create=False) as opened:
        return max((len(a.history) for r in opened.runs(sweep_id) for a in r.attempts), default=0)


def test_a_tampered_wandb_run_id_never_reaches_a_glob(tmp_path):
    with pytest.raises(Exception, match="not a valid run id"):
        wandb_files.find_run_dir("*", tmp_path)


#: Bytes W&B's service may write per file in the disk-full test: its run record and config fit,
#: the epochs, the artifact and the exit record do not.
WANDB_FILE_LIMIT = 4096


def test_wandb_disk_full_is_noticed_and_the_store_keeps_the_run(tmp_path, offline_wandb):
    """W&B's disk fills up for real while the store can still be written.

    The arrangement: a file size limit (``RLIMIT_FSIZE``, what ``prlimit --fsize`` sets) put
    on W&B's service process alone. W&B writes every run file (``run-<id>.wandb``, its logs)
    from ``wandb-core``, a child the agent starts at ``wandb.init``; the store (SQLite) and the
    checkpoints are written by the agent process. A limit on the agent would be inherited by
    ``wandb-core`` but would also stop SQLite, so the agent stops itself right after
    ``wandb.init`` (``LRTRACK_FAULT=wandb-init:SIGSTOP``), the test sets the limit on its
    ``wandb-core`` child (``prlimit(2)``, as ``prlimit --pid``) and lets it go on (SIGCONT).
    From there every W&B write past `WANDB_FILE_LIMIT` bytes fails with EFBIG (Go ignores
    SIGXFSZ), as on a full disk; W&B logs the error in its own log and tells the agent nothing.
    """
    import resource

    store = f"sqlite:///{tmp_path}/store.db"
    sweep_id = create(write_sweep_spec(tmp_path / "grid.yaml", "faults", {"lr": [0.05]}, epochs=3), store)
    agent = spawn_agent(sweep_id, store, "--heartbeat-seconds", "1", fault="wandb-init:SIGSTOP")
    wait_for(lambda: process_state(agent.pid) == "T", 120, "the agent stopped after wandb.init")
    (core,) = [pid for pid in _children(agent.pid) if b"wandb-core" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    resource.prlimit(core, resource.RLIMIT_FSIZE, (WANDB_FILE_LIMIT, WANDB_FILE_LIMIT))
    agent.send_signal(signal.SIGCONT)
    out, err = agent.communicate(timeout=300)
    assert agent.returncode == 0, (out, err)

    with open_store(store, create=False) as opened:
        (run,) = opened.runs(sweep_id)
    (attempt,) = run.attempts
    assert (run.state, attempt.state) == ("finished", "finished")
    assert [row["epoch"] for row in attempt.history] == [1, 2, 3]  # the store kept every epoch
    assert "no exit record" in attempt.summary[wandb_files.INCOMPLETE]
    assert f"run 1 attempt 1: warning: W&B run {attempt.wandb_run_id} incomplete: no exit record" in out
    folder = wandb_files.find_run_dir(attempt.wandb_run_id, offline_wandb)
    assert (folder / f"run-{attempt.wandb_run_id}.wandb").stat().st_size <= WANDB_FILE_LIMIT  # really cut short
    assert len(wandb_files.history_rows(wandb_files.read_records(folder))) < 3
    assert_exactly_once(store, sweep_id, offline_wandb, 1, incomplete=(attempt.wandb_run_id,))

    (entry,) = show(sweep_id, store)["runs"]
    assert entry["state"] == "finished" and "no exit record" in entry["wandb_incomplete"]
    table = lrtrack("sweep", "show", sweep_id, "--store", store, env={**os.environ, "COLUMNS": "250"})
    assert "finished, W&B incomplete" in table.stdout
    assert f"W&B run {attempt.wandb_run_id} (run 1 attempt 1) incomplete: no exit record" in table.stdout
    sync = lrtrack("sync", sweep_id, "--dry-run", "--store", store)
    assert sync.returncode == 0, sync.stderr
    assert f"W&B run {attempt.wandb_run_id} (run 1 attempt 1, finished in the store): incomplete" in sync.stderr


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                    children.append(int(entry.name))
            except (OSError, ValueError):
                pass  # gone meanwhile
    return children


@pytest.mark.slow
def test_a_sigterm_while_the_store_is_locked_stops_the_agent_within_a_bound(tmp_path, offline_wandb):
    """Scenario 4's second half: another connection holds SQLite's write lock (BEGIN IMMEDIATE)
    while the agent's epoch write waits on it, and a SIGTERM arrives.

    The bound: SQLite waits are cut into `SQLITE_BUSY_SECONDS` tries; between tries (`SqlStore._do`)
    the agent raises the stop signal (``between_tries``), even during training where a SIGTERM is
    otherwise held to the end of the epoch; recording the attempt then retries the locked store
    for `RELEASE_SECONDS` at most, and W&B's run is closed as interrupted. So the agent exits 143
    within SQLITE_BUSY_SECONDS + 2 s (the longest backoff) + RELEASE_SECONDS + W&B's finish, the
    lock still held. Its attempt could not be written: the next agent finds it silent, records it
    ``crashed`` once, and finishes the run."""
    import sqlite3

    from lrtrack.agent.loop import RELEASE_SECONDS
    from lrtrack.store import SQLITE_BUSY_SECONDS

    path = tmp_path / "store.db"
    store = f"sqlite:///{path}"
    sweep_id = create(write_sweep_spec(tmp_path / "grid.yaml", "faults", {"lr": [0.05]}, epochs=2), store)
    agent = spawn_agent(sweep_id, store, "--heartbeat-seconds", "1", fault="epoch@1:SIGSTOP")
    wait_for(lambda: process_state(agent.pid) == "T", 120, "the agent stopped after storing epoch 1")
    lock = sqlite3.connect(path, isolation_level=None, timeout=30)
    lock.execute("BEGIN IMMEDIATE")
    try:
        agent.send_signal(signal.SIGCONT)
        # Epoch 2 trains and its store write waits on the lock. A wait inside SQLite shows no state
        # to wait for; a signal landing before the write takes the epoch hook's own stop, which
        # must keep the same bound (recording retries RELEASE_SECONDS at most).
        time.sleep(3 * SQLITE_BUSY_SECONDS)
        agent.send_signal(signal.SIGTERM)
        bound = SQLITE_BUSY_SECONDS + 2 + RELEASE_SECONDS + 30  # + W&B's finish and a busy machine
        try:
            out, err = agent.communicate(timeout=bound)
        except subprocess.TimeoutExpired:
            agent.kill()
            raise
        assert agent.returncode == 143, (out, err)
        assert "run 1 attempt 1: not recorded (" in out and "database is locked" in out
        assert "agent stopped: its run could not be recorded" in out
    finally:
        lock.rollback()
        lock.close()
    with open_store(store, create=False) as opened:
        (run,) = opened.runs(sweep_id)
    assert [a.state for a in run.attempts] == ["running"]  # nobody could write it
    clean = run_agent(sweep_id, store)  # its heartbeat is older than the grace period by now
    assert clean.returncode == 0, clean.stderr
    (run,) = assert_exactly_once(store, sweep_id, offline_wandb, 1)
    assert [a.state for a in run.attempts] == ["crashed", "finished"]
