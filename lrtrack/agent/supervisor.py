"""Several agents on one machine: one process per GPU slot (``CUDA_VISIBLE_DEVICES`` set)
or N CPU workers sharing the cores; `supervise` starts them, forwards SIGINT/SIGTERM/SIGUSR1
and reports each one's exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

from lrtrack.agent.signals import EPOCH_END_SIGNALS
from lrtrack.errors import UserError


def parse_gpus(value: str) -> list[str]:
    """``0,1,3`` -> ["0", "1", "3"]; ``all`` -> every visible CUDA device."""
    if value == "all":
        import torch

        count = torch.cuda.device_count()
        if count == 0:
            raise UserError("--gpus all: no CUDA device is visible on this machine")
        return [str(i) for i in range(count)]
    gpus = [part.strip() for part in value.split(",") if part.strip()]
    if not gpus or not all(part.isdigit() for part in gpus):
        raise UserError(f"--gpus: expected a list like 0,1,2 or 'all', not {value!r}")
    return gpus


@dataclass
class Worker:
    name: str
    env: dict[str, str]


def workers_for(gpus: list[str] | None, per_gpu: int, cpu_workers: int) -> list[Worker]:
    """One worker per GPU slot (``per_gpu`` each) with CUDA_VISIBLE_DEVICES, else N CPU workers
    splitting the cores between them (OMP_NUM_THREADS, unless already set)."""
    if gpus:
        return [Worker(f"gpu{gpu}.{k}", {"CUDA_VISIBLE_DEVICES": gpu}) for gpu in gpus for k in range(per_gpu)]
    # CPU workers share the cores instead of each starting one thread per core (oversubscription).
    threads = {} if "OMP_NUM_THREADS" in os.environ else {"OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // cpu_workers))}
    return [Worker(f"cpu{k}", dict(threads)) for k in range(cpu_workers)]


def supervise(sweep_id: str, workers: list[Worker], agent_args: list[str], store_url: str,
              report: Callable[[str], None]) -> int:
    """Run one ``lrtrack agent`` process per worker; forward signals; report each exit.

    The store URL travels in ``LRTRACK_STORE`` (never on a command line, where
    ``ps`` would show a password). Returns 0 when every worker exited 0, else
    128 + the signal after a forwarded one, else the first non-zero code.
    """
    procs: list[tuple[Worker, subprocess.Popen]] = []
    received: list[int] = []

    def forward(signum, frame):
        received.append(signum)
        for _, proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, *EPOCH_END_SIGNALS)}
    try:
        for worker in workers:
            env = {**os.environ, **worker.env, "LRTRACK_STORE": store_url, "LRTRACK_WORKER": worker.name}
            cmd = [sys.executable, "-m", "lrtrack", "agent", sweep_id, *agent_args]
            procs.append((worker, subprocess.Popen(cmd, env=env)))
        codes = []
        for worker, proc in procs:
            while True:
                try:
                    code = proc.wait()
                    break
                except KeyboardInterrupt:  # pragma: no cover - the handler above forwards instead
                    continue
            codes.append(code)
            report(f"worker {worker.name} (pid {proc.pid}) exited with code {code}")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        return 128 + int(received[-1])
    return next((code for code in codes if code != 0), 0)
