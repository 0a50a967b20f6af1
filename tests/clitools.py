"""What tests repeat, one home each:

- writing a sweep file: `sweep_spec` (the dict), `write_sweep_spec` (the YAML file);
- driving the real ``lrtrack`` command line, one subprocess per command: `lrtrack`, `spawn`,
  `create`, and reading its results back: `show`, `finished_configs`;
- the answer to a mistake (exit 2, one line, no traceback): `assert_one_line_error`;
- waiting for a state with a deadline, never sleeping for one: `wait_for`; a process's state
  (an agent stopped by ``LRTRACK_FAULT=...:SIGSTOP``): `process_state`;
- the one offline W&B run a test made: `only_run_dir` (read it back with `lrtrack.wandb_files`);
- the environment every test runs in (W&B offline in its own ``WANDB_DIR``, no API key, no
  ``$LRTRACK_STORE``): `OFFLINE_WANDB` and `UNSET`, set by conftest's autouse fixture, and
  `offline_env` for a fixture wider than one test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml


def sweep_spec(name: str, parameters: dict[str, Any], *, method: str = "grid", more: dict[str, Any] | None = None,
               **fixed: Any) -> dict[str, Any]:
    """A sweep file's contents: ``method`` (grid) maximizing ``val/acc`` over ``parameters``
    (a list is the parameter's ``values``, a dict W&B's own syntax), with ``fixed`` settings on
    top of ``dataset: digits`` (unless the dataset is swept); ``more`` adds top-level keys
    (``early_terminate``, ``expected``, ...). ``SweepSpec.model_validate`` takes it as it is."""
    return {
        "name": name, "method": method, "metric": {"name": "val/acc", "goal": "maximize"},
        "parameters": {key: value if isinstance(value, dict) else {"values": list(value)}
                       for key, value in parameters.items()},
        "fixed": {**({} if "dataset" in parameters else {"dataset": "digits"}), **fixed},
        **(more or {}),
    }


def write_sweep_spec(path: Path, name: str, parameters: dict[str, Any], **kwargs: Any) -> Path:
    """`sweep_spec` written to ``path`` as YAML (``kwargs`` as there); returns ``path``."""
    path.write_text(yaml.safe_dump(sweep_spec(name, parameters, **kwargs), sort_keys=False))
    return path


#: W&B as every test runs it: offline, quiet, no console capture (``WANDB_DIR`` is per test).
OFFLINE_WANDB = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_CONSOLE": "off"}
#: Never inherited by a test: a real API key, or a store of the machine's.
UNSET = ("WANDB_API_KEY", "LRTRACK_STORE")


def offline_env(wandb_dir: Path) -> dict[str, str]:
    """This process's environment as a test's (`OFFLINE_WANDB`, without `UNSET`), W&B writing in ``wandb_dir``."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET}
    return {**env, **OFFLINE_WANDB, "WANDB_DIR": str(wandb_dir)}


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


def assert_one_line_error(proc: subprocess.CompletedProcess, *fragments: str, code: int = 2) -> str:
    """``proc`` answered a mistake as lrtrack does: exit ``code`` (2: the user's mistake), one
    line on stderr holding each of ``fragments``, no traceback anywhere. Returns that line."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


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


def process_state(pid: int) -> str:
    """The one-letter state of process ``pid`` (``T``: stopped, as SIGSTOP leaves it)."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
