"""What tests repeat: driving the real ``lrtrack`` command line (one subprocess per command),
reading its results back, and waiting for a state with a deadline."""

from __future__ import annotations

import json
import subprocess
import sys
import time
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


def wait_for(condition, timeout: float, what: str, interval: float = 0.2):
    """Poll ``condition()`` until it returns something true (returned), failing the test after
    ``timeout`` seconds with ``what`` was awaited: tests wait for a state, never sleep for one."""
    import pytest

    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
    return value


def only_run_dir(wandb_dir: Path) -> Path:
    """The one offline W&B run folder under ``wandb_dir`` (the test made exactly one)."""
    (run,) = sorted((wandb_dir / "wandb").glob("offline-run-*"))
    return run
