"""Claims that scale, retries, and SQLite shared between machines.

A grid sweep's points are enumerated once at creation, in the ``sweeps`` engine's
own order, and claimed without asking the engine or reading the sweep's runs;
``sweep retry`` requeues failed runs as new attempts; an SQLite store on a network
filesystem or used from several hosts is warned about.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

import pytest
from clitools import assert_one_line_error, lrtrack, show, sweep_spec, write_sweep_spec

from lrtrack.config import SweepSpec
from lrtrack.errors import LrtrackWarning, UserError
from lrtrack.store import filesystem_type, open_store
from lrtrack.sweep import create_sweep, grid_points, propose

CLAIM = {"grace_seconds": 60.0}


def grid_spec(lrs=(0.1, 0.01, 0.001), optimizers=("sgd", "adam", "adamw", "rmsprop")) -> SweepSpec:
    return SweepSpec.model_validate(
        sweep_spec("claims", {"lr": lrs, "optimizer": optimizers, "batch_size": {"value": 32}}, epochs=1))


def never(runs):
    raise AssertionError("a grid claim asked the engine")


def test_grid_points_are_the_engines_proposals_in_the_engines_order(tmp_path):
    spec = grid_spec()
    with open_store(f"sqlite:///{tmp_path}/engine.db") as store:  # the engine path: no points stored
        sweep = store.create_sweep(name="e", backend="local", spec=spec.model_dump(mode="json"),
                                   wandb_config=spec.to_wandb(), project="p", entity=None)
        next_config = propose(sweep.wandb_config)
        proposed = []
        while (claim := store.claim_run(sweep.id, "w", next_config, **CLAIM)).run is not None:
            proposed.append(claim.run.config)
            store.finish_attempt(claim.attempt.id, "finished", {})
    assert len(proposed) == 12
    assert grid_points(spec.to_wandb()) == proposed
    assert grid_points({**spec.to_wandb(), "method": "random"}) is None


def test_a_grid_claim_neither_asks_the_engine_nor_reads_other_runs(store_url):
    from sqlalchemy import event

    with open_store(store_url) as store:
        sweep = create_sweep(grid_spec(), store, "local")
        statements: list[str] = []
        claiming = [False]  # only the claims' statements count (a finish reads its own attempt's epochs)
        event.listen(store._engine, "before_cursor_execute",
                     lambda conn, cursor, statement, *args: claiming[0] and statements.append(statement))

        def claim_next():
            claiming[0] = True
            try:
                return store.claim_run(sweep.id, "w", never, **CLAIM)
            finally:
                claiming[0] = False

        numbers = []
        while (claim := claim_next()).run is not None:
            numbers.append(claim.run.number)
            store.log_epoch(claim.attempt.id, {"epoch": 1, "val/acc": 0.5})
            store.finish_attempt(claim.attempt.id, "finished", {"val/acc": 0.5})
        assert claim.reason == "exhausted" and store.get_sweep(sweep.id).state == "finished"
    assert numbers == list(range(1, 13))
    claims = [s for s in statements if "lrtrack_grid_points" in s or "lrtrack_epochs" not in s]
    assert claims and not any("lrtrack_epochs" in s and s.lstrip().upper().startswith("SELECT") for s in statements)


@pytest.mark.parametrize("claimers", [16])
def test_concurrent_claimers_take_every_grid_point_exactly_once(store_url, claimers):
    spec = grid_spec(lrs=[round(0.001 * k, 4) for k in range(1, 26)])  # 25 x 4 = 100 points
    with open_store(store_url) as store:
        sweep = create_sweep(spec, store, "local")
    taken: list[int] = []
    errors: list[BaseException] = []

    def claimer() -> None:
        try:
            with open_store(store_url, create=False) as store:
                while True:
                    claim = store.claim_run(sweep.id, f"t{threading.get_ident()}", never, **CLAIM)
                    if claim.run is None:
                        if claim.reason != "wait":
                            return
                        time.sleep(0.01)
                        continue
                    taken.append(claim.run.number)
                    store.finish_attempt(claim.attempt.id, "finished", {})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claimer) for _ in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert sorted(taken) == list(range(1, 101))  # every point once: none twice, none skipped


def test_retry_requeues_failed_runs_as_new_attempts_in_one_transaction(store_url):
    with open_store(store_url) as store:
        sweep = create_sweep(grid_spec(lrs=[0.1], optimizers=["sgd", "adam"]), store, "local", max_attempts=1)
        first = store.claim_run(sweep.id, "w", never, **CLAIM)
        store.finish_attempt(first.attempt.id, "failed", {"state": "failed"})
        second = store.claim_run(sweep.id, "w", never, **CLAIM)
        store.finish_attempt(second.attempt.id, "finished", {})
        assert store.claim_run(sweep.id, "w", never, **CLAIM).reason == "exhausted"
        assert store.retry_runs(sweep.id, ("crashed",)) == []
        assert store.retry_runs(sweep.id, ("failed",)) == [first.run.number]
        assert store.get_sweep(sweep.id).state == "running"
        again = store.claim_run(sweep.id, "w", never, **CLAIM)
        assert (again.run.number, again.attempt.number) == (first.run.number, 2)


@pytest.mark.slow
def test_sweep_retry_runs_failed_runs_again_and_show_lists_both_attempts(tmp_path, offline_wandb, data_dir):
    from lrtrack.config import load_spec
    from lrtrack.sweep import describe, retry

    store = f"sqlite:///{tmp_path}/store.db"
    spec = write_sweep_spec(tmp_path / "mnist.yaml", "retry", {"lr": [0.01, 0.001]},
                            dataset="mnist", model="fcn", epochs=1, train_size=200, test_size=100)
    with open_store(store) as opened:
        sweep_id = create_sweep(load_spec(spec), opened, "local", max_attempts=1).id
    # First pass: no MNIST files where the agent looks, so both runs fail (one attempt allowed).
    empty = tmp_path / "no-data"
    empty.mkdir()
    proc = lrtrack("agent", sweep_id, "--store", store,
                   env={**os.environ, "LRTRACK_DATA_DIR": str(empty)})
    assert proc.returncode == 0, proc.stderr
    with open_store(store, create=False) as opened:
        assert Counter(e["state"] for e in describe(opened, sweep_id)["runs"]) == {"failed": 2}
        with pytest.raises(UserError, match="--state: expected some of .* not exploded"):
            retry(opened, sweep_id, ("failed", "exploded"))
    proc = lrtrack("sweep", "retry", "nosuchid", "--store", store)
    assert assert_one_line_error(proc).startswith("error: unknown sweep id 'nosuchid' in store sqlite")

    proc = lrtrack("sweep", "retry", sweep_id, "--store", store)
    assert proc.returncode == 0, proc.stderr
    assert "2 runs requeued (1, 2)" in proc.stdout
    proc = lrtrack("agent", sweep_id, "--store", store, env={**os.environ, "LRTRACK_DATA_DIR": str(data_dir)})
    assert proc.returncode == 0, proc.stderr
    entries = show(sweep_id, store)["runs"]
    assert sorted((e["run"], e["attempt"], e["state"]) for e in entries) == [
        (1, 1, "failed"), (1, 2, "finished"), (2, 1, "failed"), (2, 2, "finished")]
    assert {e["run_state"] for e in entries} == {"finished"}


MOUNTS = """\
/dev/sda1 / ext4 rw,relatime 0 0
server:/export/home /home nfs4 rw,vers=4.2 0 0
/dev/sdb1 /home/local ext4 rw 0 0
lustre@tcp:/scratch /scratch lustre rw 0 0
"""


def test_filesystem_type_is_that_of_the_longest_mount_point_above_the_path():
    assert filesystem_type(Path("/home/ann/.lrtrack/store.db"), MOUNTS) == "nfs4"
    assert filesystem_type(Path("/home/local/store.db"), MOUNTS) == "ext4"
    assert filesystem_type(Path("/scratch/x/store.db"), MOUNTS) == "lustre"
    assert filesystem_type(Path("/homework/store.db"), MOUNTS) == "ext4"  # not under /home
    assert filesystem_type(Path("/anything"), "") is None


def test_an_sqlite_store_used_from_another_host_is_warned_about(tmp_path):
    url = f"sqlite:///{tmp_path}/store.db"
    with open_store(url) as store:
        sweep = create_sweep(grid_spec(), store, "local")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # this host alone: no warning
            with open_store(url, create=False):
                pass
        store.claim_run(sweep.id, "gpu-node-7:4242:slurm-12_3", never, **CLAIM)
    with pytest.warns(LrtrackWarning, match="other hosts too \\(gpu-node-7\\).*PostgreSQL"):
        open_store(url, create=False).close()
    proc = lrtrack("sweep", "show", sweep.id, "--store", url)
    assert proc.returncode == 0
    (line,) = [line for line in proc.stderr.splitlines() if line.startswith("warning:")]
    assert "gpu-node-7" in line and "postgresql://" in line
