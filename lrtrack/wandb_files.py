"""Read back what a W&B run wrote locally, with W&B's own reader (``wandb leet inspect``).

The reader is W&B's ``wandb-core`` binary, run directly (``wandb-core leet inspect``, the
command ``wandb leet inspect`` runs after starting Python and importing wandb): about
0.05 s per file instead of 1.3 s, which lets an agent check every run it closes
(`read_exit`).

Offline runs live in ``<WANDB_DIR>/wandb/offline-run-<time>-<id>/run-<id>.wandb``.
`lrtrack sync` uses `find_run_dir`, `read_summary` and `wandb_exe` (is a run's W&B
file complete before it is synced?), agents use `wandb_root` and `read_exit`. `read_records`,
`history_rows` and `artifacts` serve the tests, which check what a run logged with
W&B's reader rather than lrtrack's bookkeeping. Reports never read these files:
they read the store.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from lrtrack.errors import LrtrackError

#: The attempt summary entry (in the store, ``sweep show``) of a run whose W&B file is incomplete: why.
INCOMPLETE = "wandb_incomplete"


def wandb_root(wandb_dir: str | os.PathLike | None = None) -> Path:
    """The ``wandb/`` folder runs are written to (``$WANDB_DIR/wandb`` or ``./wandb``)."""
    base = Path(wandb_dir or os.environ.get("WANDB_DIR") or ".")
    return base if base.name == "wandb" else base / "wandb"


def find_run_dir(run_id: str, wandb_dir: str | os.PathLike | None = None) -> Path | None:
    """The local folder of run ``run_id`` (offline or online), or None.

    ``run_id`` comes from the store: anything but letters, digits, ``-`` and ``_``
    (a tampered ``*`` would match every run) is refused before it reaches the glob.
    """
    from lrtrack.store import SAFE_ID

    if not re.fullmatch(SAFE_ID, run_id):
        raise LrtrackError(f"W&B run id {run_id!r} read from the store is not a valid run id (a tampered store?)")
    root = wandb_root(wandb_dir)
    matches = sorted(root.glob(f"*run-*-{run_id}"))
    return matches[-1] if matches else None


def wandb_exe() -> str:
    """The ``wandb`` command: on PATH, else next to this Python (a virtual environment not activated)."""
    return shutil.which("wandb") or str(Path(sys.executable).with_name("wandb"))


def core_exe() -> Path | None:
    """W&B's ``wandb-core`` binary (where `wandb.util.get_core_path` finds it), found without
    importing wandb; None when this wandb has none."""
    import importlib.util

    spec = importlib.util.find_spec("wandb")
    path = Path(spec.origin).parent / "bin" / "wandb-core" if spec and spec.origin else None
    return path if path is not None and path.is_file() else None


def _leet(path: Path, *args: str) -> str:
    """``wandb leet inspect ARGS PATH`` (a run folder or its ``.wandb`` file), run as
    ``wandb-core leet inspect`` directly when the binary is there."""
    command = [wandb_exe(), "leet", "inspect", *args, str(path)]
    core = core_exe()
    if core is not None:
        run_file = path if path.is_file() else next(iter(sorted(path.glob("*.wandb"))), None)
        if run_file is None:
            raise LrtrackError(f"wandb leet inspect {path}: no .wandb file there")
        command = [str(core), "leet", "inspect", "--no-observability", *args,
                   "--run-file", str(run_file), str(run_file.parent.parent)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise LrtrackError(f"wandb leet inspect {path}: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    return proc.stdout


def read_summary(path: str | os.PathLike) -> dict[str, Any]:
    """``wandb leet inspect --summary --json``: state, config, summary, exit code..."""
    return json.loads(_leet(Path(path), "--summary", "--json"))


def read_exit(folder: str | os.PathLike) -> tuple[int | None, str | None]:
    """The exit code W&B recorded for the run in ``folder``, and why there is none (None when
    the file has its exit record).

    A run W&B finished has an exit record last in its ``.wandb`` file. W&B does not tell the
    process that finished the run when writing that file failed (disk full, a file size
    limit): its service only logs the error. A file cut short has no exit record.
    """
    try:
        summary = read_summary(folder)
    except LrtrackError as exc:
        return None, f"W&B's file cannot be read ({exc})"
    if summary.get("exit_code") is None:
        return None, (f"no exit record in {summary.get('file') or folder}: "
                      "W&B did not write all of it (disk full, or killed before its finish)")
    return summary["exit_code"], None


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every record of the run's transaction log, in order."""
    return [json.loads(line) for line in _leet(Path(path), "--json").splitlines() if line.strip()]


def history_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows passed to ``wandb.log``, without W&B's own ``_step``/``_runtime`` keys."""
    rows = []
    for record in records:
        if record["type"] == "history":
            rows.append({k: v for k, v in record["history"]["item"].items() if not k.startswith("_")})
    return rows


def artifacts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Logged artifacts: name, type, aliases, file paths and metadata."""
    found = []
    for record in records:
        if record["type"] == "artifact":
            art = record["artifact"]
            found.append(
                {
                    "name": art.get("name"),
                    "type": art.get("type"),
                    "aliases": art.get("aliases", []),
                    "files": [entry["path"] for entry in art.get("manifest", {}).get("contents", [])],
                    "metadata": json.loads(art["metadata"]) if isinstance(art.get("metadata"), str) else art.get("metadata"),
                }
            )
    return found
