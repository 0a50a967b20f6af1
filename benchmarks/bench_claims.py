"""Claims at scale, no training: a big grid claimed to the end by many concurrent claimers.

Each claimer (a thread with its own store connection, like one agent) loops
``claim_run`` -> ``finish_attempt`` until the sweep is done. Two claim paths:

- ``points``: the grid's points enumerated at ``sweep create`` and claimed with
  ``FOR UPDATE SKIP LOCKED`` (what lrtrack does for grid sweeps);
- ``engine``: the sweep's runs read and the ``sweeps`` engine asked at every claim,
  under the sweep's lock (what random/bayes sweeps do, and what grids did before).

Printed per path: claims per second (wall), p50/p99 claim latency, p50 of the first
and the last 10% of claims (a claim's cost should not grow with the runs done), and
the exactly-once check (every point claimed once, none skipped). Needs PostgreSQL
(``--store`` or ``$LRTRACK_TEST_PG_URL``) whose ``max_connections`` exceeds the
claimers; each path runs in a fresh database that is dropped afterwards.

    python benchmarks/bench_claims.py                       # 10,000 points, 200 claimers; engine path at 1,000
    python benchmarks/bench_claims.py --quick               # 2,000 points, 50 claimers; engine path at 500
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import threading
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", message="Valid config keys have changed in V2")  # the sweeps package

from lrtrack.config import SweepSpec  # noqa: E402
from lrtrack.store import SqlStore, open_store  # noqa: E402
from lrtrack.sweep import create_sweep, propose  # noqa: E402

from _common import load_average  # noqa: E402


def grid(points: int) -> SweepSpec:
    """A grid of ``points`` = lrs x seeds (seeds: 100, or fewer for small grids)."""
    seeds = min(100, points)
    lrs = [round(1e-5 * (k + 1), 8) for k in range(points // seeds)]
    return SweepSpec(name=f"bench-{points}", method="grid", metric={"name": "val/acc", "goal": "maximize"},
                     parameters={"lr": {"values": lrs}, "seed": {"values": list(range(seeds))}},
                     fixed={"dataset": "digits", "epochs": 1})


class FreshDatabase:
    """A new database on the server of ``url`` for one measurement, dropped afterwards."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import NullPool, create_engine
        from sqlalchemy.engine import make_url

        self.name = f"lrtrack_bench_{secrets.token_hex(4)}"
        self.admin = create_engine(make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT",
                                   poolclass=NullPool)
        self.url = make_url(url).set(database=self.name).render_as_string(hide_password=False)

    def __enter__(self) -> str:
        from sqlalchemy import text

        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        return self.url

    def __exit__(self, *exc) -> None:
        from sqlalchemy import text

        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


def measure(url: str, points: int, claimers: int, path: str) -> dict:
    spec = grid(points)
    with open_store(url) as store:
        if path == "points":
            sweep = create_sweep(spec, store, "local")
        else:  # no points stored: every claim reads the runs and asks the engine
            sweep = store.create_sweep(name=spec.name, backend="local", spec=spec.model_dump(mode="json"),
                                       wandb_config=spec.to_wandb(), project="bench", entity=None)
    latencies: list[tuple[float, float]] = []  # (start, seconds) of every successful claim
    numbers: list[int] = []
    errors: list[BaseException] = []
    ready = threading.Barrier(claimers + 1)

    def claimer(index: int) -> None:
        try:
            store: SqlStore = open_store(url, create=False)
            next_config = propose(sweep.wandb_config)
            ready.wait()
            while True:
                start = time.perf_counter()
                claim = store.claim_run(sweep.id, f"bench:{index}", next_config, grace_seconds=3600)
                seconds = time.perf_counter() - start
                if claim.run is None:
                    if claim.reason == "wait":
                        time.sleep(0.005)
                        continue
                    break
                latencies.append((start, seconds))
                numbers.append(claim.run.number)
                store.finish_attempt(claim.attempt.id, "finished", {})
            store.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors.append(exc)
            try:
                ready.abort()
            except threading.BrokenBarrierError:
                pass

    threads = [threading.Thread(target=claimer, args=(i,), daemon=True) for i in range(claimers)]
    for thread in threads:
        thread.start()
    ready.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    if errors:
        raise SystemExit(f"{path}: a claimer failed: {errors[0]!r}")

    counts = Counter(numbers)
    with open_store(url, create=False) as store:
        runs = store.runs(sweep.id)
    exactly_once = (sorted(counts) == list(range(1, points + 1)) and set(counts.values()) == {1}
                    and len(runs) == points and all(len(run.attempts) == 1 for run in runs))
    ordered = [seconds for _, seconds in sorted(latencies)]
    tenth = max(1, len(ordered) // 10)
    quantiles = statistics.quantiles(ordered, n=100)
    return {
        "path": path, "points": points, "claimers": claimers, "wall": wall, "claims_per_s": len(ordered) / wall,
        "p50": quantiles[49], "p99": quantiles[98], "first10": statistics.median(ordered[:tenth]),
        "last10": statistics.median(ordered[-tenth:]), "exactly_once": exactly_once,
    }


def show(row: dict) -> None:
    print(f"| {row['path']} | {row['points']:,} | {row['claimers']} | {row['wall']:.1f} s | {row['claims_per_s']:.0f} | "
          f"{row['p50'] * 1000:.1f} ms | {row['p99'] * 1000:.1f} ms | {row['first10'] * 1000:.1f} -> "
          f"{row['last10'] * 1000:.1f} ms | {'pass' if row['exactly_once'] else 'FAIL'} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default=os.environ.get("LRTRACK_TEST_PG_URL"), help="PostgreSQL URL (a server to use).")
    p.add_argument("--quick", action="store_true", help="2,000 points, 50 claimers; engine path at 500 points.")
    p.add_argument("--points", type=int, default=None)
    p.add_argument("--claimers", type=int, default=None)
    p.add_argument("--engine-points", type=int, default=None, help="Grid size for the engine path (0: skip it).")
    args = p.parse_args()
    if not args.store or not args.store.startswith("postgresql"):
        raise SystemExit("--store: a postgresql:// URL is needed (or LRTRACK_TEST_PG_URL)")
    points = args.points or (2000 if args.quick else 10_000)
    claimers = args.claimers or (50 if args.quick else 200)
    engine_points = args.engine_points if args.engine_points is not None else (500 if args.quick else 1000)

    print(f"# machine: {os.cpu_count()} CPUs, load average {load_average():.1f}; claimers are threads, "
          f"one PostgreSQL connection each", flush=True)
    print("| path | grid points | claimers | wall | claims/s | p50 | p99 | p50 first -> last 10% | exactly once |")
    print("|---|---|---|---|---|---|---|---|---|")
    failed = False
    for path, size in (("points", engine_points), ("engine", engine_points), ("points", points)):
        if size <= 0:
            continue
        with FreshDatabase(args.store) as url:
            row = measure(url, size, claimers, path)
        show(row)
        failed |= not row["exactly_once"]
    print(f"# load average after: {load_average():.1f}")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
