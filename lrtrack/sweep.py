"""Sweeps as a library: create one, let W&B's ``sweeps`` engine propose configs, describe it.

Two backends, chosen at creation and remembered in the store under the sweep id:

- ``local``: everything lives in lrtrack's store; `propose` wraps ``sweeps.next_run``
  and `should_stop` wraps ``sweeps.stop_runs`` (hyperband), fed with the store's
  runs and per-epoch history. No search is hand-written here.
- ``wandb``: W&B's hosted controller (``wandb.sweep``); the store keeps only the
  sweep's id, spec and project so ``lrtrack agent <id>`` needs no backend flag.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Callable

from lrtrack.config import SweepSpec, TrainConfig, make_train_config
from lrtrack.errors import LrtrackError, UserError

if TYPE_CHECKING:
    from lrtrack.store import RunRecord, Store, SweepRecord

BACKENDS = ("local", "wandb")

#: lrtrack run states -> the states W&B's sweeps engine understands.
ENGINE_STATE = {
    "pending": "running",
    "running": "running",
    "finished": "finished",
    "diverged": "finished",
    "early-stopped": "finished",
    "failed": "failed",
    "cancelled": "killed",
}


def default_backend() -> str:
    """``wandb`` when a W&B login is configured and not forced offline, else ``local``."""
    from lrtrack.tracking import resolve_wandb_mode

    return "wandb" if resolve_wandb_mode() == "online" else "local"


def choose_backend(backend: str | None) -> str:
    """The backend to create a sweep on (None picks `default_backend`), or `UserError` when it
    cannot be used here. Cheap: the CLI asks before it opens (or creates) the store."""
    from lrtrack.tracking import resolve_wandb_mode

    backend = backend or default_backend()
    if backend not in BACKENDS:
        raise UserError(f"--backend: must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "wandb" and resolve_wandb_mode() != "online":
        raise UserError("--backend wandb: needs a W&B login (WANDB_API_KEY or `wandb login`) and no WANDB_MODE=offline; "
                        "use --backend local to run the sweep offline")
    return backend


def create_sweep(spec: SweepSpec, store: Store, backend: str | None = None) -> SweepRecord:
    """Register ``spec`` and return its record; ``backend`` as in `choose_backend`."""
    backend = choose_backend(backend)
    sweep_id = None
    if backend == "wandb":
        sweep_id = register_with_wandb(spec)
    return store.create_sweep(
        name=spec.name,
        backend=backend,
        spec=spec.model_dump(mode="json"),
        wandb_config=spec.to_wandb(),
        project=spec.project,
        entity=spec.entity,
        sweep_id=sweep_id,
    )


def register_with_wandb(spec: SweepSpec) -> str:
    """``wandb.sweep``: W&B's hosted controller; needs a login (`choose_backend`) and W&B's server."""
    import wandb

    try:
        return wandb.sweep(spec.to_wandb(), project=spec.project, entity=spec.entity)
    except Exception as exc:  # network, auth, server-side validation: one line, nothing stored
        raise LrtrackError(f"W&B did not register the sweep: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def spec_of(sweep: SweepRecord) -> SweepSpec:
    return SweepSpec(**sweep.spec)


def engine_runs(runs: list[RunRecord]) -> list[Any]:
    """The store's runs as ``sweeps.SweepRun`` objects (config in W&B's ``{key: {value: v}}`` form)."""
    from sweeps import RunState, SweepRun

    return [
        SweepRun(
            name=str(run.id),
            state=RunState(ENGINE_STATE.get(run.state, "running")),
            config={key: {"value": value} for key, value in run.config.items()},
            summary_metrics=run.summary or {},
            history=run.history or [],
        )
        for run in runs
    ]


def propose(wandb_config: dict[str, Any]) -> Callable[[list[RunRecord]], dict[str, Any] | None]:
    """A function that asks ``sweeps.next_run`` for the next config given the runs so far.

    A grid, once exhausted, stays exhausted (runs are never deleted), so the function
    remembers it: an agent waiting for other agents' runs then claims without asking
    the engine again, keeping its turns holding the store's lock short.
    """
    import sweeps

    # The engine's first call is slow (it builds its schema validators): pay for it here,
    # not inside a claim that holds the store's lock while other agents wait.
    sweeps.next_run(wandb_config, [])
    exhausted = False

    def next_config(runs: list[RunRecord]) -> dict[str, Any] | None:
        nonlocal exhausted
        if exhausted:
            return None
        suggestion = sweeps.next_run(wandb_config, engine_runs(runs))
        if suggestion is None:
            exhausted = wandb_config.get("method") == "grid"
            return None
        return {key: body["value"] for key, body in suggestion.config.items()}

    return next_config


def should_stop(wandb_config: dict[str, Any], runs: list[RunRecord], run_id: int) -> bool:
    """True when hyperband (``sweeps.stop_runs``) would stop run ``run_id`` now."""
    import sweeps

    if not wandb_config.get("early_terminate"):
        return False
    to_stop = sweeps.stop_runs(wandb_config, engine_runs(runs))
    return any(run.name == str(run_id) for run in to_stop)


def train_config(spec: SweepSpec, run: RunRecord) -> TrainConfig:
    """The TrainConfig of one proposed run: the spec's fixed settings plus the proposal."""
    return make_train_config({**spec.fixed, **run.config}, source=f"sweep {run.sweep_id} run {run.number}")


def run_label(spec: SweepSpec, config: TrainConfig) -> str:
    """A readable W&B run name from the swept values, e.g. ``lr=0.001 adam cosine``."""
    keys = ["lr", "optimizer", "scheduler"]
    keys += [key for key in spec.swept if key not in keys]
    return config.label(keys)


def set_state(store: Store, sweep_id: str, state: str) -> SweepRecord:
    """pause / resume / cancel. Cancelling also cancels the runs not yet started."""
    sweep = store.get_sweep(sweep_id)
    allowed = {"paused": ("running",), "running": ("paused",), "cancelled": ("running", "paused")}
    if sweep.state not in allowed[state]:
        raise UserError(f"sweep {sweep_id} is {sweep.state}; cannot make it {state}")
    store.set_sweep_state(sweep_id, state)
    return store.get_sweep(sweep_id)


def describe(store: Store, sweep_id: str) -> dict[str, Any]:
    """Everything ``sweep show`` prints: the sweep, state counts and one entry per attempt.

    Each entry: ``run`` (proposal number), ``config`` (flat dict of the spec's
    parameters), ``state`` (the attempt's), ``run_state``, ``attempt``,
    ``wandb_run_id`` and ``metrics`` (final values keyed as logged).
    """
    sweep = store.get_sweep(sweep_id)
    spec = spec_of(sweep)
    runs = store.runs(sweep_id)
    entries = []
    for run in runs:
        config = {key: run.config.get(key) for key in spec.parameters}
        for attempt in run.attempts:
            entries.append(
                {
                    "run": run.number,
                    "config": config,
                    "state": attempt.state,
                    "run_state": run.state,
                    "attempt": attempt.number,
                    "wandb_run_id": attempt.wandb_run_id,
                    "worker": attempt.worker,
                    "epochs": len(attempt.history),
                    "metrics": dict(attempt.summary),
                }
            )
    return {
        "sweep": {
            "id": sweep.id,
            "name": sweep.name,
            "backend": sweep.backend,
            "state": sweep.state,
            "project": sweep.project,
            "entity": sweep.entity,
            "method": spec.method,
            "metric": spec.metric.model_dump(),
            "run_states": dict(Counter(run.state for run in runs)),
            "created_at": sweep.created_at.isoformat() if sweep.created_at else None,
        },
        "runs": entries,
    }
