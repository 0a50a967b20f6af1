"""How fast `lrtrack ui` answers on big stores: one sweep of 10,000 runs x 20 epochs, and 500 sweeps.

The stores are generated directly (SQL inserts into lrtrack's tables through the store's
own schema), not trained: only the dashboard is measured. A real ``lrtrack ui`` process
serves them; each round times the sweep page's JSON (what the live page polls), its
HTML, the CSV export and the sweeps list, as a browser would fetch them: once on a
fresh dashboard (cold: nothing read yet; the process's imports are done at start), and
again right after (what each 2-second poll of an unchanged sweep costs).

    python benchmarks/bench_ui.py [--runs 10000] [--epochs 20] [--sweeps 500] [--rounds 3]
"""

from __future__ import annotations

import math
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import load_average, parser

SPEC = {
    "name": "bench-ui", "method": "grid", "metric": {"name": "val/acc", "goal": "maximize"},
    "parameters": {"lr": {"values": []}, "optimizer": {"values": ["sgd", "adam"]}},
    "fixed": {"dataset": "digits", "model": "fcn", "epochs": 20},
}


def generate(url: str, runs: int, epochs: int, sweeps: int) -> str:
    """Fill the store at ``url``: one sweep of ``runs`` runs with ``epochs`` epochs each, plus
    ``sweeps - 1`` small sweeps. Returns the big sweep's id."""
    from sqlalchemy import insert

    from lrtrack.store import _tables, open_store

    rng = random.Random(0)
    lrs = sorted({round(10 ** rng.uniform(-5, -0.5), 8) for _ in range(runs)})[: runs // 2] or [0.01]
    spec = {**SPEC, "parameters": {**SPEC["parameters"], "lr": {"values": lrs}}}
    with open_store(url) as store:
        big = store.create_sweep(name="bench-ui", backend="local", spec=spec, wandb_config=spec, project="lrtrack",
                                 entity=None)
        for k in range(sweeps - 1):
            store.create_sweep(name=f"small-{k}", backend="local", spec=SPEC, wandb_config=SPEC, project="lrtrack",
                               entity=None)
        tables = _tables().tables
        now = time.time()
        with store._engine.begin() as conn:  # bulk inserts: a benchmark fixture, not an API
            for number in range(1, runs + 1):
                lr, optimizer = lrs[(number - 1) % len(lrs)], ("sgd", "adam")[number % 2]
                run_id = conn.execute(insert(tables["lrtrack_runs"]).values(
                    sweep_id=big.id, number=number, config={"lr": lr, "optimizer": optimizer, **SPEC["fixed"]},
                    state="finished")).inserted_primary_key[0]
                history = []
                acc = 0.1
                for epoch in range(1, epochs + 1):
                    acc = min(0.99, acc + (1 - acc) * min(0.5, lr * 20) * rng.uniform(0.5, 1))
                    history.append({"epoch": epoch, "train/loss": -math.log(max(acc, 1e-3)), "train/acc": acc,
                                    "val/loss": -math.log(max(acc * 0.98, 1e-3)), "val/acc": acc * 0.98, "lr": lr})
                summary = {**history[-1], "state": "finished", "epochs_run": epochs, "num_classes": 10,
                           "best/val_acc": history[-1]["val/acc"], "best/epoch": epochs}
                attempt_id = conn.execute(insert(tables["lrtrack_attempts"]).values(
                    run_id=run_id, number=1, state="finished", worker="bench", wandb_run_id=f"r{number:07d}",
                    started_at=now, heartbeat_at=now, ended_at=now, summary=summary)).inserted_primary_key[0]
                conn.execute(insert(tables["lrtrack_epochs"]),
                             [{"attempt_id": attempt_id, "epoch": row["epoch"], "metrics": row} for row in history])
    return big.id


def fetch(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=300) as response:
        response.read()
    return time.perf_counter() - start


class Dashboard:
    """A real ``lrtrack ui`` process on a free loopback port; ``base`` is its URL."""

    def __init__(self, store_url: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.proc = subprocess.Popen([sys.executable, "-m", "lrtrack", "ui", "--store", store_url, "--port", str(port)],
                                     stdout=subprocess.PIPE, text=True)
        while "serving" not in (self.proc.stdout.readline() or "serving"):
            pass
        self.base = f"http://127.0.0.1:{port}/"
        for _ in range(300):
            try:
                fetch(self.base)
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"lrtrack ui did not answer at {self.base}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--sweeps", type=int, default=500)
    p.add_argument("--store", help="Store URL (default: a new SQLite file)")
    args = p.parse_args()
    if args.quick:
        args.runs, args.sweeps, args.rounds = 1000, 50, 2
    args.rounds = args.rounds or 3
    scratch = None if args.store else tempfile.TemporaryDirectory(prefix="bench-ui-")  # removed at the end
    url = args.store or f"sqlite:///{scratch.name}/store.db"
    start = time.perf_counter()
    sweep_id = generate(url, args.runs, args.epochs, args.sweeps)
    print(f"generated {args.runs:,} runs x {args.epochs} epochs and {args.sweeps} sweeps in "
          f"{time.perf_counter() - start:.1f} s")
    pages = {"sweep page data (/api/sweeps/ID)": f"api/sweeps/{sweep_id}", "sweep page HTML": f"sweeps/{sweep_id}",
             "CSV export": f"sweeps/{sweep_id}/results.csv", f"sweeps page data ({args.sweeps} sweeps)": "api/sweeps"}
    cold = {}
    times = {name: [] for name in pages}
    for round in range(args.rounds):  # a fresh dashboard each round: its first answers are cold
        ui = Dashboard(url)
        try:
            for name, path in pages.items():
                seconds = fetch(ui.base + path)
                cold.setdefault(name, []).append(seconds)
                times[name].append(fetch(ui.base + path))  # the live page's next poll of an unchanged sweep
        finally:
            ui.close()
    print(f"load average {load_average():.1f}; median of {args.rounds} fresh dashboards (first request, "
          f"then the next poll of the unchanged sweep):")
    for name in pages:
        print(f"  {name:42s} first {statistics.median(cold[name]):6.2f} s   next {statistics.median(times[name]):6.2f} s")
    if scratch is not None:
        scratch.cleanup()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
