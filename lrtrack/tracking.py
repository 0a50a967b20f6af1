"""Where a run's metrics go: a small logger interface and its W&B implementation.

`lrtrack.train.run` talks only to `RunLogger`. `WandbLogger` is the real thing
(online, or offline files under ``$WANDB_DIR/wandb`` that ``wandb sync`` uploads
later); `MemoryLogger` keeps everything in memory for library use and tests of
the training loop itself. wandb is imported lazily: it is slow to import.
"""

from __future__ import annotations

import netrc
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlparse

from lrtrack.faults import fault_point
from lrtrack.states import SUCCESS, State

if TYPE_CHECKING:
    from lrtrack.config import TrainConfig

DEFAULT_BASE_URL = "https://api.wandb.ai"


def resolve_wandb_mode(offline: bool = False) -> str:
    """``offline`` when asked, when ``WANDB_MODE`` says so, or when no W&B login is configured."""
    if offline:
        return "offline"
    env_mode = os.environ.get("WANDB_MODE")
    if env_mode in ("offline", "dryrun", "disabled"):
        return "offline" if env_mode == "dryrun" else env_mode
    return "online" if wandb_logged_in() else "offline"


def wandb_logged_in() -> bool:
    """True when an API key is configured (``WANDB_API_KEY`` or a netrc entry for the W&B host).

    W&B's public check, ``wandb.login(prompt=False, verify=False)``, imports wandb (seconds),
    prints to the terminal and installs the key in this process's session; choosing online or
    offline before a run must be quick and silent, so this reads the two sources ``wandb.login``
    reads first, the same way: ``WANDB_API_KEY``, then the netrc file (``$NETRC`` or ``~/.netrc``)
    entry of the ``WANDB_BASE_URL`` host. A key kept only in a W&B settings file is not seen
    (such a user gets offline runs, and ``lrtrack sync`` uploads them later)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", DEFAULT_BASE_URL)).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC") or None).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


class RunLogger:
    """Receives one run's config, per-epoch metrics, checkpoints, figures and summary.

    Methods are called in this order: `start`, `log_epoch` once per epoch,
    `log_checkpoints` and `log_figure` at the end, then `finish`.
    """

    run_id: str | None = None

    def start(self, config: TrainConfig) -> None:
        """The run begins; ``config`` is the validated training config."""

    def log_epoch(self, metrics: dict[str, Any]) -> None:
        """One row of history: ``epoch``, ``train/loss``, ``val/acc``, ``lr``, ..."""

    def log_checkpoints(self, files: dict[str, Path], metadata: dict[str, Any]) -> None:
        """Model weights (e.g. ``{"final": path, "best": path}``) with the config as metadata."""

    def log_figure(self, key: str, path: Path) -> None:
        """An image made from the run (the loss/accuracy curves)."""

    def finish(self, summary: dict[str, Any]) -> None:
        """The run's summary: best and final metrics and its ``state``."""

    @property
    def files_dir(self) -> Path:
        """A directory for files the run writes (checkpoints, figures)."""
        if not hasattr(self, "_files_dir"):
            self._files_dir = Path(tempfile.mkdtemp(prefix="lrtrack-run-"))
        return self._files_dir


class MemoryLogger(RunLogger):
    """Keeps everything in memory (``history``, ``summary``, ``files``). The files themselves
    (checkpoints, the curves figure, a traceback) are written to a temporary directory that is
    removed with the logger, or when the process exits: a run without W&B leaves nothing behind."""

    def __init__(self) -> None:
        self.config: TrainConfig | None = None
        self.history: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}
        self.files: dict[str, Path] = {}
        self._temporary: tempfile.TemporaryDirectory | None = None

    @property
    def files_dir(self) -> Path:
        if self._temporary is None:
            self._temporary = tempfile.TemporaryDirectory(prefix="lrtrack-run-")
        return Path(self._temporary.name)

    def start(self, config: TrainConfig) -> None:
        self.config = config

    def log_epoch(self, metrics: dict[str, Any]) -> None:
        self.history.append(dict(metrics))

    def log_checkpoints(self, files: dict[str, Path], metadata: dict[str, Any]) -> None:
        self.files.update(files)

    def log_figure(self, key: str, path: Path) -> None:
        self.files[key] = path

    def finish(self, summary: dict[str, Any]) -> None:
        self.summary = dict(summary)


class WandbLogger(RunLogger):
    """A real W&B run: one ``wandb.log`` per epoch, a ``model`` artifact, the curves image.

    ``mode`` is ``online``/``offline``; None picks it with `resolve_wandb_mode`.
    ``extra_config`` (sweep id, attempt number, ...) is merged into the run's config.
    W&B's own console output (banners, the run summary at the end) is off unless
    ``verbose``; its warnings and every file of the run are kept (``silent``).
    ``before_finish(summary)``, when given, is called by `finish` instead of closing the
    run: the agent records the attempt in its store first, then calls `close`.
    """

    def __init__(
        self,
        project: str = "lrtrack",
        entity: str | None = None,
        *,
        mode: str | None = None,
        name: str | None = None,
        group: str | None = None,
        tags: list[str] | tuple[str, ...] = (),
        extra_config: dict[str, Any] | None = None,
        run_id: str | None = None,
        verbose: bool = False,
        before_finish: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.project, self.entity = project, entity
        self.mode = mode or resolve_wandb_mode()
        self.name, self.group, self.tags = name, group, list(tags)
        self.extra_config = dict(extra_config or {})
        self.requested_id = run_id
        self.verbose = verbose
        self.before_finish = before_finish
        self.run = None
        self.closed = False

    @classmethod
    def attach(cls, run: Any) -> WandbLogger:
        """Log into a run someone else started (``wandb.agent`` starts it for W&B sweeps)."""
        logger = cls(run.project, run.entity, mode="online")
        logger.run = run
        return logger

    def start(self, config: TrainConfig) -> None:
        import wandb

        if self.run is not None:  # attached: record the full, validated config
            self.run.config.update(config.model_dump(), allow_val_change=True)
            self.run_id = self.run.id
            return
        run = wandb.init(
            project=self.project,
            entity=self.entity,
            mode=self.mode,
            name=self.name or config.label(),
            group=self.group,
            tags=self.tags,
            id=self.requested_id,
            config={**config.model_dump(), **self.extra_config},
            reinit="create_new",
            settings=None if self.verbose else wandb.Settings(silent=True),
        )
        fault_point("wandb-init")
        self.run = run
        self.run_id = self.run.id
        self.run.define_metric("epoch")
        self.run.define_metric("*", step_metric="epoch")

    def log_epoch(self, metrics: dict[str, Any]) -> None:
        self.run.log(metrics)

    def log_checkpoints(self, files: dict[str, Path], metadata: dict[str, Any]) -> None:
        import wandb

        artifact = wandb.Artifact(f"model-{self.run.id}", type="model", metadata=metadata)
        for name, path in files.items():
            artifact.add_file(str(path), name=Path(path).name)
        self.run.log_artifact(artifact, aliases=["latest", "final", "best"])

    def log_figure(self, key: str, path: Path) -> None:
        import wandb

        # In the summary, not the history: history keeps exactly one row per epoch.
        self.run.summary[key] = wandb.Image(str(path))

    def finish(self, summary: dict[str, Any]) -> None:
        if self.before_finish is not None:
            self.before_finish(summary)
        else:
            self.close(summary)

    def close(self, summary: dict[str, Any]) -> None:
        """Write ``summary`` and finish the W&B run, once: exit code 0 for a run that completed
        (`lrtrack.states.SUCCESS`), 1 for any other state (failed, interrupted, superseded,
        cancelled...). Nothing when the run never started."""
        if self.run is None or self.closed:
            return
        self.closed = True
        # W&B writes an Enum by its name (FINISHED): states go in as their values (finished)
        self.run.summary.update({key: str(value) if isinstance(value, State) else value for key, value in summary.items()})
        self.run.finish(exit_code=0 if summary.get("state") in SUCCESS else 1)

    @property
    def folder(self) -> Path | None:
        """The run's folder (``wandb/offline-run-...`` when offline), once started."""
        return Path(self.run.dir).parent if self.run is not None else None

    def describe(self) -> str:
        """``W&B run ab12cd34, offline`` for start lines (the id may be assigned by W&B later)."""
        return f"W&B run {self.run_id or self.requested_id or '(new)'}, {self.mode}"

    @property
    def files_dir(self) -> Path:
        if self.run is not None:
            path = Path(self.run.dir).parent / "lrtrack"
            path.mkdir(parents=True, exist_ok=True)
            return path
        return super().files_dir
