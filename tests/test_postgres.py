"""The store on a real PostgreSQL server (started by scripts/test-postgres.sh).

Agents are real processes (``python -m lrtrack agent ... --store postgresql+psycopg://...``)
training tiny configs on ``digits`` with real offline W&B runs. Each test gets
a fresh database on the server (conftest's ``pg_db``), dropped afterwards. The
outage test starts a server of its own with ``scripts/test-postgres.sh`` and stops
and restarts that one (``own_server``), never the server other files' tests share.
"""

from __future__ import annotations

import json
import os
import pickle
import secrets
import subprocess
import threading
import time
from pathlib import Path

import pytest
from clitools import assert_one_line_error, create, finished_configs, lrtrack, show, spawn, wait_for, write_sweep_spec

pytestmark = pytest.mark.postgres

REPO = Path(__file__).resolve().parents[1]
# Short enough for tests, long enough that a busy 2-core machine never misses a heartbeat.
FAST = ["--heartbeat-seconds", "0.5", "--grace-seconds", "6", "--poll-seconds", "0.5"]


def runs_now(store: str, sweep_id: str):
    """The sweep's runs read in this process (cheaper than a `sweep show` subprocess while polling)."""
    from lrtrack.store import open_store

    with open_store(store) as opened:
        return opened.runs(sweep_id)




@pytest.fixture
def pg_user_db(pg_url):
    """A database owned by a new login role with a known password: (url, password)."""
    from sqlalchemy import NullPool, create_engine, text
    from sqlalchemy.engine import make_url

    suffix = secrets.token_hex(4)
    name, user, password = f"lrtrack_t_{suffix}", f"lrtrack_u_{suffix}", f"secret{secrets.token_hex(8)}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{password}'"))
        conn.execute(text(f'CREATE DATABASE "{name}" OWNER "{user}"'))
    url = make_url(pg_url).set(username=user, password=password, database=name)
    try:
        yield url.render_as_string(hide_password=False), password
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{user}"'))
        admin.dispose()


def dump_store(url: str) -> str:
    """Every row of every table in the store's database, as text."""
    from sqlalchemy import MetaData, create_engine, select

    engine = create_engine(url)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        with engine.connect() as conn:
            return "\n".join(repr(row) for table in metadata.sorted_tables for row in conn.execute(select(table)))
    finally:
        engine.dispose()


def server_script(command: str, *args: str, server_dir: str | None = None) -> str:
    """``scripts/test-postgres.sh COMMAND ARGS`` on the server in ``server_dir``; its output."""
    env = {**os.environ, "LRTRACK_TEST_PG_DIR": server_dir} if server_dir else None
    proc = subprocess.run(["bash", str(REPO / "scripts" / "test-postgres.sh"), command, *args],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def own_server(pg_url):
    """A private PostgreSQL server for a test that stops it: (url, its directory).

    The shared test server stays up: with two pytest workers, other files' tests
    use it while this one runs, and an outage there would fail them, not this.
    """
    exports = dict(line.removeprefix("export ").split("=", 1)
                   for line in server_script("start").splitlines() if line.startswith("export "))
    try:
        yield exports["LRTRACK_TEST_PG_URL"], exports["LRTRACK_TEST_PG_DIR"]
    finally:
        server_script("stop", server_dir=exports["LRTRACK_TEST_PG_DIR"])


# ---------------------------------------------------------------- concurrency and faults


@pytest.mark.slow
def test_eight_agents_finish_a_24_point_grid_exactly_once_across_a_10s_server_outage(tmp_path, own_server):
    pg_db, server_dir = own_server
    lrs = [round(0.001 * (i + 1), 4) for i in range(8)]
    spec = write_sweep_spec(tmp_path / "grid.yaml", "pg-test", {"lr": lrs, "optimizer": ["sgd", "adam", "rmsprop"]},
                            epochs=1, train_size=300)
    sweep_id = create(spec, pg_db)
    # The grace period (60 s) outlasts the outage: runs in flight keep their claim.
    settings = ["--heartbeat-seconds", "0.5", "--grace-seconds", "60", "--poll-seconds", "0.3"]
    agents = [spawn("agent", sweep_id, "--store", pg_db, *settings) for _ in range(8)]

    wait_for(lambda: sum(run.state == "finished" for run in runs_now(pg_db, sweep_id)) >= 4, 300, "4 finished runs")
    before = runs_now(pg_db, sweep_id)
    outage_started = time.monotonic()
    server_script("restart-after", "10", server_dir=server_dir)
    assert time.monotonic() - outage_started >= 10
    assert sum(run.state == "finished" for run in before) < 24, "the outage must fall inside the sweep"
    assert all(agent.poll() is None for agent in agents), "an agent gave up during the outage"

    for agent in agents:
        out, err = agent.communicate(timeout=500)
        assert agent.returncode == 0, err
        assert "agent exits:" in out
    description = show(sweep_id, pg_db)
    finished = finished_configs(description)
    assert len(finished) == 24 and set(finished.values()) == {1}
    assert len(description["runs"]) == 24  # one attempt each: nothing lost, nothing run twice
    assert description["sweep"]["state"] == "finished"
    workers = {entry["worker"] for entry in description["runs"]}
    assert len(workers) > 1  # the grid really was shared


def test_reading_runs_while_another_agent_claims_sees_one_consistent_snapshot(tmp_path, pg_db):
    # random: no grid points, the runs come from the proposer
    spec = write_sweep_spec(tmp_path / "r.yaml", "pg-test", {"lr": [0.01]}, method="random", epochs=1)
    sweep_id = create(spec, pg_db)
    from lrtrack.store import open_store

    errors: list[BaseException] = []

    def claim_many() -> None:  # a claim commits a new run and its first attempt together
        try:
            with open_store(pg_db) as store:
                for _ in range(150):
                    store.claim_run(sweep_id, "claimer", lambda runs: {"lr": len(runs) + 1},
                                    grace_seconds=60)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    claimer = threading.Thread(target=claim_many)
    claimer.start()
    reads = 0
    with open_store(pg_db) as store:
        while claimer.is_alive() or reads == 0:
            runs = store.runs(sweep_id)
            assert all(len(run.attempts) == 1 for run in runs)
            reads += 1
        claimer.join()
        assert not errors, errors
        assert reads > 10 and len(store.runs(sweep_id)) == 150


def test_every_command_works_on_postgres_without_showing_the_password_or_storing_the_api_key(
        tmp_path, offline_wandb, pg_user_db):
    url, password = pg_user_db
    api_key = secrets.token_hex(20)  # looks like a real 40-character W&B key
    env = {**os.environ, "WANDB_API_KEY": api_key, "WANDB_MODE": "offline"}
    outputs = []

    def run(*args: str, **extra_env: str) -> subprocess.CompletedProcess:
        proc = lrtrack(*args, env={**env, **extra_env})
        outputs.append(proc.stdout + proc.stderr)
        assert proc.returncode == 0, proc.stderr
        return proc

    spec = write_sweep_spec(tmp_path / "g.yaml", "pg-test", {"lr": [0.01, 0.05]}, epochs=1, train_size=300)
    sweep_id = run("sweep", "create", str(spec), "--store", url, "--backend", "local").stdout.strip().splitlines()[-1]
    assert "***" in outputs[-1]  # the store is named, its password masked
    agent = run("agent", sweep_id, "--store", url, *FAST)
    assert "agent exits:" in agent.stdout
    description = json.loads(run("sweep", "show", sweep_id, "--json", "--store", url).stdout)
    assert len(finished_configs(description)) == 2
    run("sweep", "show", sweep_id, "--store", url)
    listing = run("sweep", "list", LRTRACK_STORE=url)  # the store from the environment
    (row,) = [line.split() for line in listing.stdout.splitlines() if sweep_id in line]
    assert row[3] == "2/2"  # finished out of the grid's 2 runs
    sync = run("sync", sweep_id, "--dry-run", "--store", url)
    for entry in description["runs"]:
        assert entry["wandb_run_id"] in sync.stdout
    run("report", sweep_id, "--html", str(tmp_path / "report.html"), "--store", url)
    outputs.append((tmp_path / "report.html").read_text())

    for text in outputs:
        assert password not in text and api_key not in text
    store_dump = dump_store(url)
    assert sweep_id in store_dump and password not in store_dump and api_key not in store_dump
    run_files = [path for path in offline_wandb.rglob("*") if path.is_file()]
    assert any(path.suffix == ".wandb" for path in run_files)
    for path in run_files:
        assert api_key.encode() not in path.read_bytes(), path


def test_a_wrong_password_is_one_line_without_the_password(tmp_path, pg_user_db):
    from sqlalchemy.engine import make_url

    url, password = pg_user_db
    wrong = f"{password}x"
    bad_url = make_url(url).set(password=wrong).render_as_string(hide_password=False)
    spec = write_sweep_spec(tmp_path / "g.yaml", "pg-test", {"lr": [0.01]}, epochs=1)
    for args in (["sweep", "create", str(spec), "--store", bad_url], ["sweep", "list", "--store", bad_url]):
        proc = lrtrack(*args)
        assert_one_line_error(proc, "password authentication failed", "***")
        assert wrong not in proc.stdout + proc.stderr
    assert dump_store(url) == ""  # nothing half-written: not even the tables


def test_the_store_holds_json_text_only_and_never_unpickles(tmp_path, pg_db):
    sweep_id = create(write_sweep_spec(tmp_path / "g.yaml", "pg-test", {"lr": [0.01]}, epochs=1), pg_db)
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(pg_db)
    for table in inspect(engine).get_table_names():
        for column in inspect(engine).get_columns(table):
            assert "BYTEA" not in str(column["type"]).upper(), (table, column["name"])

    # A pickle that would create a file when loaded, planted where the sweep's spec lives.
    marker = tmp_path / "unpickled"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    payload = pickle.dumps(Exploit(), protocol=0).decode("ascii")
    with engine.begin() as conn:
        conn.execute(text("UPDATE lrtrack_sweeps SET spec = :payload WHERE id = :id"), {"payload": payload, "id": sweep_id})
    engine.dispose()
    proc = lrtrack("sweep", "show", sweep_id, "--store", pg_db)
    assert not marker.exists()
    assert_one_line_error(proc, "not JSON", code=1)
