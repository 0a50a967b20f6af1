"""Shared bits of the benchmarks: the machine's name, thread setting, timing summaries.

Every benchmark measures its two sides in one process, interleaved round by round
(A, B, A, B, ...) so a load spike from other processes hits both, and reports the
median of the rounds after a warm-up round, plus the ratio.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from pathlib import Path

#: The project's shared MNIST subset (../shared/datasets next to the checkout).
MNIST_SUBSET_ROOT = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def machine() -> str:
    """e.g. ``2 CPUs (AMD EPYC), torch 2.14.1, 1 thread, load 3.2``."""
    import torch

    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            model = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    load = load_average()
    threads = torch.get_num_threads()
    return (f"{os.cpu_count()} CPUs ({model}){gpu}, torch {torch.__version__}, "
            f"{threads} thread{'s' if threads != 1 else ''}, load average {load:.1f}")


def parser(description: str) -> argparse.ArgumentParser:
    """Options every benchmark has: --quick, --threads, --rounds."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="Small data and few rounds: about a minute on 2 cores.")
    p.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads for both sides (default 1; 0 keeps torch's default).")
    p.add_argument("--rounds", type=int, default=None, help="Measured rounds per side (after one warm-up round).")
    p.add_argument("--device", default="cpu", help="cpu or cuda.")
    p.add_argument("--mnist-root", default=str(MNIST_SUBSET_ROOT),
                   help="Folder with MNIST/raw (default: the shared 8,000/2,000 subset next to the checkout).")
    return p


def setup(args: argparse.Namespace) -> None:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# machine: {machine()}", flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def load_average() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
