"""Non-training overhead of a whole sweep: wall time of ``lrtrack sweep run`` vs the time
its runs spent training (issue 6, item 3).

Runs ``lrtrack sweep run SPEC --workers 1 --offline`` in a fresh process (a fresh
SQLite store and ``WANDB_DIR``), then reads every attempt's per-epoch
``perf/epoch_seconds`` (training + evaluation) back from the store. Overhead is
everything else: process start and imports, the sweep engine, store transactions,
W&B init/finish, checkpoints and the curves figure. "In runs" is the part each run
reports itself as ``perf/overhead_seconds`` (W&B init, per-epoch logging and store
writes, checkpoints, curves figure); the rest is per process.

    python benchmarks/bench_overhead.py --quick                     # sweeps/quick/study-a.yaml (3,000 samples, 2 epochs)
    python benchmarks/bench_overhead.py                             # study A as published (60,000 samples, 5 epochs)
    python benchmarks/bench_overhead.py --spec sweeps/study-b-mnist-cnn-small.yaml

Target (issue 6): overhead <= 10% of study A's wall time on CPU.

It then times, in one fresh interpreter, the fixed cost every agent process pays
before its first epoch whatever lrtrack does: importing torch, the first
torch.optim optimizer (it imports torch._dynamo), wandb and W&B's service start,
matplotlib, W&B's ``sweeps`` engine. Their sum is the floor of a process's overhead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import parser, setup

REPO = Path(__file__).resolve().parents[1]

# Run in a fresh interpreter: each step's seconds, in the order an agent pays them.
FLOOR = """
import json, time
steps, tick = {}, time.perf_counter()
def step(name):
    global tick
    now = time.perf_counter(); steps[name] = now - tick; tick = now
import sweeps; step("import sweeps (W&B's engine)")
import torch; step("import torch")
torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], fused=True); step("first optimizer (imports torch._dynamo)")
import wandb; step("import wandb")
wandb.setup(); step("start W&B's service")
import matplotlib.figure, matplotlib.backends.backend_agg; step("import matplotlib")
print(json.dumps(steps))
"""


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--spec", type=Path, default=None, help="Sweep file (default: study A, or its quick version).")
    args = p.parse_args()
    spec = args.spec or REPO / "sweeps" / ("quick/study-a.yaml" if args.quick else "study-a-fashion-fcn-adam.yaml")

    from lrtrack.store import open_store

    setup(args)  # prints the machine, with the thread count the child gets
    with tempfile.TemporaryDirectory(prefix="lrtrack-bench-") as tmp:
        store_url = f"sqlite:///{tmp}/store.db"
        env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": tmp, "WANDB_SILENT": "true"}
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)  # torch's intra-op threads in the child
        command = [sys.executable, "-m", "lrtrack", "sweep", "run", str(spec), "--workers", "1",
                   "--store", store_url, "--offline"]
        tick = time.perf_counter()
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp)
        lines = [(time.perf_counter() - tick, line.rstrip()) for line in proc.stdout]  # timestamped agent output
        stderr = proc.stderr.read()
        proc.wait()
        wall = time.perf_counter() - tick
        if proc.returncode != 0:
            sys.exit(f"lrtrack sweep run failed ({proc.returncode}): {stderr.strip()[-2000:]}")
        sweep_id = lines[-1][1]
        with open_store(store_url) as store:
            runs = store.runs(sweep_id)
            epochs = [row["perf/epoch_seconds"] for run in runs for attempt in run.attempts for row in attempt.history]
            in_runs = sum(attempt.summary.get("perf/overhead_seconds", 0.0) for run in runs for attempt in run.attempts)
    training = sum(epochs)
    overhead = wall - training
    print("| sweep | runs x epochs | wall s | training s | overhead s | of which in runs s | overhead share |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {spec.stem} | {len(runs)} x {len(epochs) // max(len(runs), 1)} | {wall:.1f} | {training:.1f} | "
          f"{overhead:.1f} | {in_runs:.1f} | **{overhead / wall:.0%}** |")
    print("\ntimeline of the agent's output (s since start):")
    for seconds, line in lines:
        print(f"{seconds:7.2f}  {line[:100]}")
    print(f"{wall:7.2f}  process exited")

    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    floor = subprocess.run([sys.executable, "-c", FLOOR], capture_output=True, text=True, env=env, check=True)
    steps = json.loads(floor.stdout)
    print("\nfixed cost of one agent process, before lrtrack does anything (fresh interpreter):")
    print("| step | s |\n|---|---|")
    for name, seconds in steps.items():
        print(f"| {name} | {seconds:.2f} |")
    total = sum(steps.values())
    print(f"| **sum** | **{total:.2f}** |")
    print(f"\nfloor share of this sweep: {total / wall:.0%} (overhead above the floor: {overhead - total:.1f} s, "
          f"{(overhead - total) / wall:.0%})")


if __name__ == "__main__":
    main()
