"""Driving the real ``lrtrack`` command line from tests: one subprocess per command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path


def lrtrack(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run ``python -m lrtrack ARGS`` to the end; ``kwargs`` go to `subprocess.run` (env, cwd)."""
    return subprocess.run([sys.executable, "-m", "lrtrack", *args], capture_output=True, text=True, timeout=timeout,
                          **kwargs)


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start ``python -m lrtrack ARGS`` in the background (an agent to kill, say); ``env`` replaces the environment."""
    return subprocess.Popen([sys.executable, "-m", "lrtrack", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


def create(spec: Path, store: str) -> str:
    """``lrtrack sweep create`` on the local backend; the new sweep's id."""
    proc = lrtrack("sweep", "create", str(spec), "--store", store, "--backend", "local")
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def show(sweep_id: str, store: str) -> dict:
    """``lrtrack sweep show --json``, parsed."""
    proc = lrtrack("sweep", "show", sweep_id, "--json", "--store", store)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def finished_configs(description: dict) -> Counter:
    """How many finished attempts each config has, from ``sweep show --json``."""
    return Counter(json.dumps(e["config"], sort_keys=True) for e in description["runs"] if e["state"] == "finished")
