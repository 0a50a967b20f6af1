"""Do open dashboards slow the agents? Claims and heartbeats on PostgreSQL with 0 and with 5 dashboards.

A busy store: ``--claimers`` threads (one PostgreSQL connection each, like agents) loop on
one big grid sweep, with no training: ``claim_run`` -> ``--epochs`` x ``log_epoch`` ->
``heartbeat`` -> ``finish_attempt``. Beside them, ``--dashboards`` real ``lrtrack ui``
processes over the same store, each polled like the live sweep page (``/api/sweeps/ID`` of
that sweep, the next request 2 s after the last answer). Phases of ``--seconds`` alternate,
without and with the dashboards polling (A, B, A, B, ...: a load spike from other processes
hits both), and the agents' numbers are reported side by side with the ratio.

Printed per side: claims per second, claim p50/p99, heartbeat p50/p99, epoch-write p50, and
(with dashboards) how long a poll took. Needs PostgreSQL (``--store`` or
``$LRTRACK_TEST_PG_URL``); it runs in a fresh database, dropped afterwards.

    python benchmarks/bench_ui_claims.py            # 20 claimers, 5 dashboards, 4 x 30 s phases
    python benchmarks/bench_ui_claims.py --quick    # 10 claimers, 2 x 15 s phases
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", message="Valid config keys have changed in V2")  # the sweeps package

from lrtrack.store import open_store  # noqa: E402
from lrtrack.sweep import create_sweep, propose  # noqa: E402

from _common import load_average  # noqa: E402
from bench_claims import FreshDatabase, grid  # noqa: E402
from bench_ui import Dashboard, fetch  # noqa: E402

#: The live sweep page asks again this long after its last answer (lrtrack/ui/templates/sweep.html).
POLL_SECONDS = 2.0


def agents(url: str, sweep, claimers: int, epochs: int, seconds: float) -> dict[str, list[float]]:
    """Run the claimers for ``seconds``; the latencies of every claim, heartbeat and epoch write."""
    times: dict[str, list[float]] = {"claim": [], "heartbeat": [], "epoch": []}
    stop = time.monotonic() + seconds
    errors: list[BaseException] = []

    def timed(kind: str, call, *args, **kwargs):
        start = time.perf_counter()
        result = call(*args, **kwargs)
        times[kind].append(time.perf_counter() - start)
        return result

    def claimer(index: int) -> None:
        try:
            with open_store(url, create=False) as store:
                next_config = propose(sweep.wandb_config)
                while time.monotonic() < stop:
                    claim = timed("claim", store.claim_run, sweep.id, f"bench:{index}", next_config, grace_seconds=3600)
                    if claim.run is None:
                        raise RuntimeError(f"the grid ran out ({claim.reason}): use a bigger --points")
                    for epoch in range(1, epochs + 1):
                        timed("epoch", store.log_epoch, claim.attempt.id,
                              {"epoch": epoch, "train/loss": 1.0 / epoch, "val/acc": 0.5 + epoch / 100})
                    timed("heartbeat", store.heartbeat, claim.attempt.id)
                    store.finish_attempt(claim.attempt.id, "finished", {"state": "finished", "epochs_run": epochs})
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(i,), daemon=True) for i in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"a claimer failed: {errors[0]!r}")
    return times


def pollers(dashboards: list[Dashboard], sweep_id: str, stop: threading.Event) -> tuple[list[threading.Thread], list]:
    polls: list[float] = []

    def poll(ui: Dashboard) -> None:
        while not stop.is_set():
            polls.append(fetch(f"{ui.base}api/sweeps/{sweep_id}"))
            stop.wait(POLL_SECONDS)

    threads = [threading.Thread(target=poll, args=(ui,), daemon=True) for ui in dashboards]
    for thread in threads:
        thread.start()
    return threads, polls


def quantile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default=os.environ.get("LRTRACK_TEST_PG_URL"), help="PostgreSQL URL (a server to use).")
    p.add_argument("--quick", action="store_true", help="10 claimers, 2 phases of 15 s.")
    p.add_argument("--claimers", type=int, default=None)
    p.add_argument("--dashboards", type=int, default=5)
    p.add_argument("--epochs", type=int, default=3, help="Epoch rows each claimed run writes.")
    p.add_argument("--seconds", type=float, default=None, help="Length of one phase.")
    p.add_argument("--rounds", type=int, default=None, help="Phase pairs (without, with dashboards).")
    p.add_argument("--points", type=int, default=50_000, help="Grid size (must outlast all phases).")
    args = p.parse_args()
    if not args.store or not args.store.startswith("postgresql"):
        raise SystemExit("--store: a postgresql:// URL is needed (or LRTRACK_TEST_PG_URL)")
    claimers = args.claimers or (10 if args.quick else 20)
    seconds = args.seconds or (15.0 if args.quick else 30.0)
    rounds = args.rounds or (1 if args.quick else 2)

    print(f"# machine: {os.cpu_count()} CPUs, load average {load_average():.1f}; {claimers} claimers (threads, one "
          f"connection each), {args.epochs} epoch rows + 1 heartbeat per claim, {args.dashboards} dashboards "
          f"(lrtrack ui processes) polling the sweep every {POLL_SECONDS:g} s; {rounds} x {seconds:g} s per side",
          flush=True)
    with FreshDatabase(args.store) as url:
        with open_store(url) as store:
            sweep = create_sweep(grid(args.points), store, "local")
        dashboards = [Dashboard(url) for _ in range(args.dashboards)]
        sides: dict[int, dict[str, list[float]]] = {0: {}, args.dashboards: {}}
        claims: dict[int, list[float]] = {0: [], args.dashboards: []}
        polls: list[float] = []
        try:
            for _ in range(rounds):
                for side in sides:
                    stop = threading.Event()
                    threads, side_polls = pollers(dashboards if side else [], sweep.id, stop)
                    times = agents(url, sweep, claimers, args.epochs, seconds)
                    stop.set()
                    for thread in threads:
                        thread.join()
                    polls += side_polls
                    claims[side].append(len(times["claim"]) / seconds)
                    for kind, values in times.items():
                        sides[side].setdefault(kind, []).extend(values)
        finally:
            for ui in dashboards:
                ui.close()
        with open_store(url, create=False) as store:
            done = len(store.run_summaries(sweep.id))

    print(f"# load average after: {load_average():.1f}; the sweep has {done:,} runs at the end")
    print("| dashboards | claims/s | claim p50 | claim p99 | heartbeat p50 | heartbeat p99 | epoch write p50 | poll p50 |")
    print("|---|---|---|---|---|---|---|---|")
    for side, times in sides.items():
        poll = f"{statistics.median(polls):.2f} s" if side and polls else "-"
        print(f"| {side} | {statistics.mean(claims[side]):.0f} | {quantile(times['claim'], 50) * 1000:.1f} ms | "
              f"{quantile(times['claim'], 99) * 1000:.1f} ms | {quantile(times['heartbeat'], 50) * 1000:.1f} ms | "
              f"{quantile(times['heartbeat'], 99) * 1000:.1f} ms | {quantile(times['epoch'], 50) * 1000:.1f} ms | {poll} |")
    base, loaded = sides[0], sides[args.dashboards]
    print(f"ratio with/without {args.dashboards} dashboards: claims/s "
          f"{statistics.mean(claims[args.dashboards]) / statistics.mean(claims[0]):.2f}x, heartbeat p50 "
          f"{quantile(loaded['heartbeat'], 50) / quantile(base['heartbeat'], 50):.2f}x, heartbeat p99 "
          f"{quantile(loaded['heartbeat'], 99) / quantile(base['heartbeat'], 99):.2f}x")


if __name__ == "__main__":
    main()
