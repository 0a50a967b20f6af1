"""The store's contract, one shared test class run against every backend:
a real SQLite file and a real PostgreSQL database (scripts/test-postgres.sh).

Configs are proposed by W&B's own `sweeps` engine (`lrtrack.sweep.propose`), as in
production; no training happens here, so these tests are fast.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from clitools import sweep_spec, wait_for

from lrtrack.config import SweepSpec
from lrtrack.errors import NoStoreError, StoreError, StoreGoneError, StoreOpenError, UnknownSweepError, UserError
from lrtrack.store import DEFAULT_MAX_ATTEMPTS, open_store
from lrtrack.sweep import propose


def create(store, spec: dict, max_attempts: int = DEFAULT_MAX_ATTEMPTS):
    """Register ``spec`` (a `sweep_spec`) with the store's own call, as `lrtrack.sweep.create_sweep` does."""
    spec = SweepSpec.model_validate(spec)
    return store.create_sweep(name=spec.name, backend="local", spec=spec.model_dump(mode="json"),
                              wandb_config=spec.to_wandb(), project=spec.project, entity=spec.entity,
                              max_attempts=max_attempts)


def claim(store, sweep, worker="w", grace=60.0, token=None):
    return store.claim_run(sweep.id, worker, propose(sweep.wandb_config), grace_seconds=grace, wandb_run_id=token)


#: One agent without training: claim, finish, repeat until the sweep says stop.
CLAIM_LOOP = textwrap.dedent("""
    import sys, time
    from lrtrack.store import open_store
    from lrtrack.sweep import propose
    url, sweep_id, worker = sys.argv[1:]
    with open_store(url) as store:
        next_config = propose(store.get_sweep(sweep_id).wandb_config)
        while True:
            c = store.claim_run(sweep_id, worker, next_config, grace_seconds=60)
            if c.run is None:
                if c.reason != "wait":
                    break
                time.sleep(0.02)
                continue
            store.log_epoch(c.attempt.id, {"epoch": 1, "val/acc": 0.5})
            store.finish_attempt(c.attempt.id, "finished", {"val/acc": 0.5})
""")


@pytest.fixture
def store(store_url):
    with open_store(store_url) as opened:
        yield opened


class TestStoreContract:
    """What every store must do; parametrised over SQLite and PostgreSQL by ``store_url``."""

    def test_sweeps_are_created_listed_and_found_by_id(self, store):
        first = create(store, sweep_spec("grid", {"lr": [0.1]}, epochs=1))
        second = create(store, sweep_spec("grid", {"lr": [0.2]}, epochs=1))
        assert first.id != second.id and len(first.id) == 8
        assert store.get_sweep(first.id).spec["parameters"] == {"lr": {"values": [0.1]}}
        assert store.get_sweep(first.id).state == "running" and store.get_sweep(first.id).backend == "local"
        assert {s.id for s in store.list_sweeps()} == {first.id, second.id}
        with pytest.raises(UnknownSweepError, match="unknown sweep id 'nope'"):
            store.get_sweep("nope")

    def test_a_grid_is_claimed_point_by_point_then_waits_then_finishes(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [0.1, 0.01, 0.001]}, epochs=1))
        claims = [claim(store, sweep, worker=f"w{i}") for i in range(3)]
        assert sorted(c.run.config["lr"] for c in claims) == [0.001, 0.01, 0.1]
        assert [c.attempt.number for c in claims] == [1, 1, 1]
        assert claim(store, sweep).reason == "wait"  # nothing left, but runs are in flight
        for c in claims:
            store.finish_attempt(c.attempt.id, "finished", {"val/acc": 0.9})
        assert claim(store, sweep).reason == "exhausted"
        assert store.get_sweep(sweep.id).state == "finished"
        assert claim(store, sweep).reason == "finished"
        assert [r.state for r in store.runs(sweep.id)] == ["finished"] * 3

    def test_concurrent_agent_processes_claim_each_point_exactly_once(self, store, store_url):
        lrs = [round(0.001 * (i + 1), 4) for i in range(8)]
        spec = sweep_spec("grid24", {"lr": lrs, "optimizer": ["sgd", "adam", "rmsprop"]})
        sweep = create(store, spec)
        procs = [subprocess.Popen([sys.executable, "-c", CLAIM_LOOP, store_url, sweep.id, f"p{i}"],
                                  stderr=subprocess.PIPE, text=True) for i in range(8)]
        for proc in procs:
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
        runs = store.runs(sweep.id)
        configs = [json.dumps(r.config, sort_keys=True) for r in runs]
        assert len(runs) == 24 and len(set(configs)) == 24
        assert all(r.state == "finished" and len(r.attempts) == 1 for r in runs)
        assert store.get_sweep(sweep.id).state == "finished"

    def test_a_silent_attempt_is_requeued_after_the_grace_period(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [0.1]}, epochs=1))
        first = claim(store, sweep, worker="dead", grace=2.0)
        assert claim(store, sweep, grace=2.0).reason == "wait"  # still within the grace period
        # wait for the state, not a sleep: until the grace period is over a claim only says "wait"
        second = wait_for(lambda: (c := claim(store, sweep, worker="rescuer", grace=2.0)).run and c, 30,
                          "the silent attempt requeued to the rescuer")
        assert second.run.id == first.run.id and second.attempt.number == 2
        (run,) = store.runs(sweep.id)
        assert [a.state for a in run.attempts] == ["crashed", "running"]
        assert [a.worker for a in run.attempts] == ["dead", "rescuer"]
        assert store.heartbeat(first.attempt.id) == "superseded"  # the slow agent learns it lost the run
        store.finish_attempt(first.attempt.id, "finished", {"val/acc": 0.1})  # it finished anyway
        store.finish_attempt(second.attempt.id, "finished", {"val/acc": 0.2})
        (run,) = store.runs(sweep.id)
        assert run.state == "finished" and run.summary == {"val/acc": 0.2}
        assert [(a.state, a.summary) for a in run.attempts] == [("superseded", {"val/acc": 0.1}), ("finished", {"val/acc": 0.2})]

    def test_heartbeats_keep_an_attempt_alive(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [0.1]}, epochs=1))
        first = claim(store, sweep, grace=1.5)
        claimed = time.monotonic()
        # two grace periods of heartbeats 0.1 s apart: without them the claim below would take the run over
        while time.monotonic() - claimed < 2 * 1.5:
            assert store.heartbeat(first.attempt.id) is None
            time.sleep(0.1)
        assert claim(store, sweep, grace=1.5).reason == "wait"

    def test_a_run_fails_for_good_after_max_attempts(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [0.1]}, epochs=1), max_attempts=2)
        for number in (1, 2):
            c = claim(store, sweep)
            assert c.attempt.number == number
            store.finish_attempt(c.attempt.id, "failed", {"state": "failed", "error": "boom"})
        (run,) = store.runs(sweep.id)
        assert run.state == "failed" and [a.state for a in run.attempts] == ["failed", "failed"]
        assert claim(store, sweep).reason == "exhausted"

    def test_an_interrupted_attempt_goes_back_to_pending(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [0.1]}, epochs=1))
        c = claim(store, sweep)
        store.finish_attempt(c.attempt.id, "interrupted", {"state": "interrupted"})
        assert store.runs(sweep.id)[0].state == "pending"
        again = claim(store, sweep)
        assert again.run.id == c.run.id and again.attempt.number == 2

    def test_epochs_summary_and_wandb_id_are_kept_nan_included(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [10.0]}, epochs=1))
        c = claim(store, sweep)
        store.set_wandb_run_id(c.attempt.id, "abc12345")
        store.log_epoch(c.attempt.id, {"epoch": 1, "train/loss": 2.5, "lr": 10.0})
        store.log_epoch(c.attempt.id, {"epoch": 2, "train/loss": float("nan"), "lr": 10.0})
        store.finish_attempt(c.attempt.id, "diverged", {"state": "diverged", "train/loss": float("inf")})
        (run,) = store.runs(sweep.id)
        assert run.state == "diverged" and run.attempts[0].wandb_run_id == "abc12345"
        assert [row["epoch"] for row in run.history] == [1, 2]
        assert math.isnan(run.history[1]["train/loss"]) and math.isinf(run.summary["train/loss"])
        assert run.attempts[0].ended_at is not None

    def test_run_summaries_and_histories_read_what_runs_reads_in_parts(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [10.0, 0.1, 0.2]}, epochs=1), max_attempts=2)
        other = create(store, sweep_spec("grid", {"lr": [0.3]}, epochs=1))
        first = claim(store, sweep)  # crashes once, then finishes on its second attempt
        store.log_epoch(first.attempt.id, {"epoch": 1, "train/loss": 9.0})
        store.finish_attempt(first.attempt.id, "crashed", {"state": "crashed"})
        second = claim(store, sweep)
        for epoch, loss in ((2, float("nan")), (1, 2.5), (3, 1.5)):  # written out of order, NaN included
            store.log_epoch(second.attempt.id, {"epoch": epoch, "train/loss": loss})
        store.finish_attempt(second.attempt.id, "finished", {"state": "finished", "val/acc": 0.5})
        claim(store, sweep)  # running, no epoch yet; the third run stays pending
        store.finish_attempt(claim(store, other).attempt.id, "finished", {"val/acc": 0.7})

        full = store.runs(sweep.id)
        light = store.run_summaries(sweep.id)
        assert [(r.number, r.state, r.config) for r in light] == [(r.number, r.state, r.config) for r in full]
        assert [[(a.id, a.number, a.state, a.summary, a.ended_at) for a in r.attempts] for r in light] == \
            [[(a.id, a.number, a.state, a.summary, a.ended_at) for a in r.attempts] for r in full]
        assert all(a.history == [] for r in light for a in r.attempts)
        attempts = [a for r in full for a in r.attempts]
        rows = store.histories(a.id for a in attempts)
        assert {a.id for a in attempts if a.history} == set(rows)
        for a in attempts:
            assert json.dumps(rows.get(a.id, [])) == json.dumps(a.history)  # NaN compares equal as text
        assert [r["epoch"] for r in rows[second.attempt.id]] == [1, 2, 3]
        assert math.isnan(rows[second.attempt.id][1]["train/loss"])
        assert store.histories([]) == {}
        everything = store.run_summaries()
        assert {r.sweep_id for r in everything} == {sweep.id, other.id} and len(everything) == len(full) + 1

    @pytest.mark.parametrize("text", ['{"epoch": 1}, {"epoch": 2}', '[1]', '{"loss": 1}'])
    def test_histories_refuse_a_tampered_epoch_row(self, store, text):
        from sqlalchemy import text as sql

        sweep = create(store, sweep_spec("grid", {"lr": [0.1]}, epochs=1))
        attempt = claim(store, sweep).attempt
        store.log_epoch(attempt.id, {"epoch": 1, "train/loss": 1.0})
        store.log_epoch(attempt.id, {"epoch": 2, "train/loss": 0.5})
        assert [r["epoch"] for r in store.histories([attempt.id])[attempt.id]] == [1, 2]
        with store._engine.begin() as conn:  # written behind the store's back, as text
            conn.execute(sql("UPDATE lrtrack_epochs SET metrics = :text WHERE epoch = 1"), {"text": text})
        with pytest.raises(StoreError, match="not JSON"):
            store.histories([attempt.id])

    def test_sweep_version_changes_with_every_write_a_page_shows(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [0.1, 0.2]}, epochs=1))
        other = create(store, sweep_spec("grid", {"lr": [0.3]}, epochs=1))
        seen = [store.sweep_version(sweep.id)]

        def changed() -> bool:
            seen.append(store.sweep_version(sweep.id))
            return seen[-1] != seen[-2]

        assert not changed()
        c = claim(store, sweep)
        assert changed()
        store.log_epoch(c.attempt.id, {"epoch": 1, "val/acc": 0.1})
        assert changed()
        store.set_wandb_run_id(c.attempt.id, "abc12345")
        assert changed()
        store.finish_attempt(claim(store, other).attempt.id, "finished", {})  # another sweep: no change
        assert not changed()
        store.finish_attempt(c.attempt.id, "finished", {"state": "finished"})
        assert changed()
        store.set_sweep_state(sweep.id, "paused")
        assert changed()
        assert not changed()

    def test_cancel_stops_running_attempts_and_pending_runs(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [0.1, 0.2]}, epochs=1))
        running = claim(store, sweep)
        other = claim(store, sweep)
        store.finish_attempt(other.attempt.id, "interrupted", {})  # back to pending
        assert store.heartbeat(running.attempt.id) is None
        store.set_sweep_state(sweep.id, "cancelled")
        assert store.heartbeat(running.attempt.id) == "cancelled"
        states = {r.config["lr"]: r.state for r in store.runs(sweep.id)}
        assert states == {running.run.config["lr"]: "running", other.run.config["lr"]: "cancelled"}
        assert claim(store, sweep).reason == "cancelled"

    def test_run_cap_ends_a_random_search(self, store):
        spec = sweep_spec("rand", {"lr": {"distribution": "log_uniform_values", "min": 1e-4, "max": 1e-1}},
                          method="random", more={"run_cap": 2})
        sweep = create(store, spec)
        for _ in range(2):
            c = claim(store, sweep)
            assert 1e-4 <= c.run.config["lr"] <= 1e-1
            store.finish_attempt(c.attempt.id, "finished", {})
        assert claim(store, sweep).reason == "run_cap"

    def test_driver_errors_become_store_errors(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [0.1]}, epochs=1))
        spec = SweepSpec.model_validate(sweep_spec("grid", {"lr": [0.1]}, epochs=1))
        with pytest.raises(StoreError, match="store "):
            store.create_sweep(name="dup", backend="local", spec=spec.model_dump(mode="json"),
                               wandb_config=spec.to_wandb(), project="p", entity=None, sweep_id=sweep.id)
        assert [s.name for s in store.list_sweeps()] == ["grid"]  # rolled back, nothing half-written

    def test_only_failed_and_crashed_attempts_count_toward_the_sweeps_limit(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [0.1]}, epochs=1), max_attempts=2)
        for state in ("interrupted", "failed", "interrupted", "cancelled"):
            c = claim(store, sweep)
            after = store.finish_attempt(c.attempt.id, state, {"state": state})
            if state == "cancelled":
                assert after == ("cancelled", "cancelled")
                break
            assert after == (state, "pending")  # one failure of two allowed: always requeued
        (run,) = store.runs(sweep.id)
        assert run.failures == 1 and len(run.attempts) == 4

    def test_max_attempts_is_the_sweeps_and_can_be_changed(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [0.1]}, epochs=1), max_attempts=1)
        store.set_max_attempts(sweep.id, 2)
        assert store.get_sweep(sweep.id).max_attempts == 2
        c = claim(store, sweep)
        assert store.finish_attempt(c.attempt.id, "failed", {"state": "failed"}) == ("failed", "pending")
        c = claim(store, sweep)
        assert store.finish_attempt(c.attempt.id, "failed", {"state": "failed"}) == ("failed", "failed")
        with pytest.raises(UserError, match="--max-attempts"):
            store.set_max_attempts(sweep.id, 0)

    def test_a_retried_claim_returns_the_attempt_already_claimed(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [0.1, 0.2]}, epochs=1))
        first = claim(store, sweep, token="tok00001")
        again = claim(store, sweep, token="tok00001")  # what a retry after a lost COMMIT does
        assert (again.run.id, again.attempt.id) == (first.run.id, first.attempt.id)
        assert again.attempt.wandb_run_id == "tok00001"
        assert store.find_claim("tok00001") == (first.attempt.id, 1) and store.find_claim("nope") is None
        assert sum(len(r.attempts) for r in store.runs(sweep.id)) == 1

    def test_an_attempt_is_recorded_once_and_missing_epochs_are_kept(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [0.1]}, epochs=1))
        c = claim(store, sweep)
        store.log_epoch(c.attempt.id, {"epoch": 1, "val/acc": 0.1})
        rows = [{"epoch": 1, "val/acc": 0.1}, {"epoch": 2, "val/acc": 0.2}]  # epoch 2's own write failed
        assert store.finish_attempt(c.attempt.id, "finished", {"state": "finished"}, history=rows) == ("finished", "finished")
        assert store.finish_attempt(c.attempt.id, "interrupted", {"state": "interrupted"}) == ("finished", "finished")
        (run,) = store.runs(sweep.id)
        assert run.state == "finished" and [r["epoch"] for r in run.history] == [1, 2]

    def test_add_to_summary_only_adds_to_an_ended_attempt(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [0.1, 0.2]}, epochs=1))
        done, running = claim(store, sweep), claim(store, sweep)
        store.finish_attempt(done.attempt.id, "finished", {"state": "finished", "val/acc": 0.5})
        before = store.sweep_version(sweep.id)
        store.add_to_summary(done.attempt.id, {"wandb_incomplete": "no exit record"})
        store.add_to_summary(running.attempt.id, {"wandb_incomplete": "no exit record"})  # still running: untouched
        assert store.sweep_version(sweep.id) != before  # a page cached by version shows the note
        first, second = store.runs(sweep.id)
        assert (first.state, first.attempts[0].state) == ("finished", "finished")
        assert first.attempts[0].summary == {"state": "finished", "val/acc": 0.5, "wandb_incomplete": "no exit record"}
        assert second.attempts[0].state == "running" and "wandb_incomplete" not in (second.attempts[0].summary or {})

    def test_a_late_finish_after_the_last_allowed_crash_finishes_the_run(self, store):
        sweep = create(store, sweep_spec("grid", {"lr": [0.1]}, epochs=1), max_attempts=1)
        slow = claim(store, sweep, grace=0.5)
        # crashed once the grace period is over (a claim only says "wait" until then): its one attempt used up
        wait_for(lambda: claim(store, sweep, grace=0.5).reason == "exhausted", 30, "the silent attempt crashed")
        assert store.runs(sweep.id)[0].state == "failed"
        assert store.finish_attempt(slow.attempt.id, "finished", {"state": "finished"}) == ("finished", "finished")
        assert store.runs(sweep.id)[0].state == "finished"

    def test_a_schema_1_store_is_upgraded(self, store, store_url):
        from sqlalchemy import create_engine, text

        sweep = create(store, sweep_spec("grid", {"lr": [0.1]}, epochs=1))
        store.close()
        engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE lrtrack_sweeps DROP COLUMN max_attempts"))
            conn.execute(text("UPDATE lrtrack_meta SET value = '1' WHERE key = 'schema_version'"))
        engine.dispose()
        with open_store(store_url, create=False) as upgraded:
            assert upgraded.get_sweep(sweep.id).max_attempts == DEFAULT_MAX_ATTEMPTS  # the column's default

    def test_a_store_of_another_schema_version_is_refused(self, store, store_url):
        from sqlalchemy import create_engine, text

        engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.begin() as conn:
            conn.execute(text("UPDATE lrtrack_meta SET value = '99' WHERE key = 'schema_version'"))
        engine.dispose()
        with pytest.raises(StoreOpenError, match="schema version 99"):
            open_store(store_url)
        with pytest.raises(StoreOpenError, match="schema version 99"):
            open_store(store_url, create=False)

    def test_without_create_a_missing_store_is_refused_and_nothing_is_created(self, store_url):
        with pytest.raises(NoStoreError, match="no store there .create a sweep first with lrtrack sweep create."):
            open_store(store_url, create=False)
        assert not lrtrack_tables(store_url)
        with open_store(store_url) as created:
            sweep = create(created, sweep_spec("grid", {"lr": [0.1]}, epochs=1))
        with open_store(store_url, create=False) as existing:
            assert existing.get_sweep(sweep.id).name == "grid"
            with pytest.raises(UnknownSweepError, match="unknown sweep id 'nope'"):
                existing.get_sweep("nope")


def lrtrack_tables(url: str) -> list[str]:
    """The store's lrtrack tables; for SQLite, asserts first that there is no file to look into."""
    from sqlalchemy import create_engine, inspect

    if url.startswith("sqlite:///"):
        assert not Path(url.removeprefix("sqlite:///")).exists()
        return []
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        return [name for name in inspect(engine).get_table_names() if name.startswith("lrtrack_")]
    finally:
        engine.dispose()


def test_unreachable_postgres_is_one_error_without_the_password():
    with pytest.raises(StoreOpenError) as err:
        open_store("postgresql://someone:hunter2@127.0.0.1:1/db")
    assert "hunter2" not in str(err.value) and "127.0.0.1" in str(err.value)


def test_unknown_scheme_and_plain_paths(tmp_path):
    with pytest.raises(StoreOpenError, match="unsupported store"):
        open_store("mysql://nowhere/db")
    with open_store(tmp_path / "plain.db") as store:
        assert store.url.endswith("plain.db") and store.list_sweeps() == []


def test_a_sqlite_file_of_another_program_is_refused(tmp_path):
    import sqlite3

    path = tmp_path / "other.db"
    sqlite3.connect(path).execute("CREATE TABLE notes (x)").connection.commit()
    with pytest.raises(StoreOpenError, match="not an lrtrack store"):
        open_store(path)


def test_without_create_a_store_file_that_vanished_is_not_created_again(tmp_path):
    path = tmp_path / "store.db"
    open_store(path).close()
    store = open_store(path, create=False)
    store.close()  # no pooled connection left: the next query opens the file again
    path.unlink()
    with pytest.raises(StoreGoneError, match="deleted while in use"):
        store.list_sweeps()
    store.close()
    assert not path.exists()


def test_a_sqlite_file_replaced_while_in_use_stops_the_store(tmp_path):
    import shutil

    path = tmp_path / "store.db"
    with open_store(path) as store:
        sweep = create(store, sweep_spec("grid", {"lr": [0.1]}, epochs=1))
        shutil.copy(path, tmp_path / "copy.db")
        (tmp_path / "copy.db").replace(path)  # same content, another file: someone restored a backup
        with pytest.raises(StoreGoneError, match="replaced"):
            claim(store, sweep)
