"""Sweeps as a library: create one, let W&B's ``sweeps`` engine propose configs, describe it.

Two backends, chosen at creation and remembered in the store under the sweep id:

- ``local``: everything lives in lrtrack's store; `propose` wraps ``sweeps.next_run``
  and `should_stop` wraps ``sweeps.stop_runs`` (hyperband), fed with the store's
  runs and per-epoch history. No search is hand-written here.
- ``wandb``: W&B's hosted controller (``wandb.sweep``); the store keeps only the
  sweep's id, spec and project so ``lrtrack agent <id>`` needs no backend flag.

Three things share the word: W&B's ``sweeps`` package is the search engine (imported
as ``from sweeps import ...``: here, and for its schema check in `lrtrack.config`), this module is lrtrack's operations on a
sweep (imported by name: ``from lrtrack.sweep import propose``), and the ``sweeps/``
folder holds sweep files (`lrtrack.config.SweepSpec`).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any, Callable

from lrtrack.config import SweepSpec, TrainConfig, flat_settings, make_train_config, nested_values
from lrtrack.errors import LrtrackError, UserError
from lrtrack.states import RETRYABLE, SUCCESS, State
from lrtrack.wandb_files import INCOMPLETE

if TYPE_CHECKING:
    from lrtrack.store import RunRecord, Store, SweepRecord

BACKENDS = ("local", "wandb")

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


def create_sweep(spec: SweepSpec, store: Store, backend: str | None = None, *,
                 max_attempts: int | None = None) -> SweepRecord:
    """Register ``spec`` and return its record; ``backend`` as in `choose_backend`;
    ``max_attempts`` None keeps the store's default."""
    from lrtrack.store import DEFAULT_MAX_ATTEMPTS

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
        max_attempts=max_attempts or DEFAULT_MAX_ATTEMPTS,
        grid_points=grid_points(spec.to_wandb()) if backend == "local" else None,
    )


def grid_points(wandb_config: dict[str, Any]) -> list[dict[str, Any]] | None:
    """Every config of a grid sweep, in the order ``sweeps.next_run`` proposes them, or None
    for random/bayes. The engine is run to exhaustion once (``sweeps.next_runs`` with a
    large ``n`` returns the whole grid, then None), so claims never ask it again."""
    import sweeps

    if wandb_config.get("method") != "grid":
        return None
    n = 1024
    while True:
        suggestions = sweeps.next_runs(wandb_config, [], n=n)
        if suggestions[-1] is None or len(suggestions) < n:
            return [{key: body["value"] for key, body in run.config.items()} for run in suggestions if run is not None]
        n *= 8


#: The settings whose every listed value `check_references` builds: user code and its arguments.
REFERENCE_FIELDS = ("dataset", "dataset_args", "model", "model_args")


def check_references(spec: SweepSpec) -> None:
    """Build every referenced dataset and model the sweep can propose (each listed value of
    ``dataset``, ``dataset_args``, ``model`` and ``model_args`` in every combination, over the
    fixed settings) on one real batch; `UserError` naming the field and the reference when
    one does not import, build or give ``(batch, num_classes)`` logits
    (`lrtrack.references.check_references`)."""
    import itertools

    from lrtrack.references import check_references as check

    def candidates(key: str) -> list[Any]:
        body = spec.parameters.get(key)
        if body is None:
            return [spec.fixed[key]] if key in spec.fixed else [TrainConfig.model_fields[key].get_default(call_default_factory=True)]
        listed = list(body.get("values", [])) + ([body["value"]] if "value" in body else [])
        return listed + (nested_values(body) or [])

    combinations = itertools.product(*(candidates(key) for key in REFERENCE_FIELDS))
    check([make_train_config({**spec.fixed, **dict(zip(REFERENCE_FIELDS, values))}) for values in combinations])


def register_with_wandb(spec: SweepSpec) -> str:
    """``wandb.sweep``: W&B's hosted controller; needs a login (`choose_backend`) and W&B's server."""
    import wandb

    try:
        return wandb.sweep(spec.to_wandb(), project=spec.project, entity=spec.entity)
    except Exception as exc:  # network, auth, server-side validation: one line, nothing stored
        raise LrtrackError(f"W&B did not register the sweep: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def spec_of(sweep: SweepRecord) -> SweepSpec:
    """The sweep's spec as stored. Its types are validated again; the setting and engine checks
    ran when the sweep was created (`create_sweep`) and are not repeated: the engine's schema
    check imports scipy (about a second), which reading a sweep (`sweep show`) does not need."""
    return SweepSpec.model_validate(sweep.spec, context={"checked": True})


def engine_runs(runs: list[RunRecord]) -> list[Any]:
    """The store's runs as ``sweeps.SweepRun`` objects (config in W&B's ``{key: {value: v}}`` form)."""
    from sweeps import RunState, SweepRun

    # lrtrack's run states as W&B's sweeps engine knows them
    engine_state = {State.PENDING: RunState.running, State.RUNNING: RunState.running,
                    **{state: RunState.finished for state in SUCCESS},
                    State.FAILED: RunState.failed, State.CANCELLED: RunState.killed}

    return [
        SweepRun(
            name=str(run.id),
            state=engine_state.get(run.state, RunState.running),
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



def planned_runs(spec: SweepSpec) -> int | None:
    """How many runs the sweep will make: the grid's size (capped by ``run_cap``), the
    ``run_cap`` of a random or bayes search, or None when nothing bounds it."""
    if spec.method != "grid":
        return spec.run_cap
    size = 1
    for body in spec.parameters.values():
        if "value" in body:
            continue
        if "values" in body:
            size *= len(body["values"])
        elif "parameters" in body:
            nested = nested_values(body)
            if nested is None:
                return spec.run_cap
            size *= len(nested)
        elif body.get("distribution") == "int_uniform":
            size *= int(body["max"]) - int(body["min"]) + 1
        elif body.get("distribution") == "q_uniform":
            size *= int((body["max"] - body["min"]) // body.get("q", 1)) + 1
    return min(size, spec.run_cap) if spec.run_cap else size


def size_message(spec: SweepSpec) -> tuple[str, str | None]:
    """What ``sweep create`` says about the sweep's size, and a warning when it is unbounded."""
    total = planned_runs(spec)
    if total is None:
        return (f"runs: unbounded ({spec.method} search without run_cap)",
                f"a {spec.method} sweep without run_cap runs until it is paused or cancelled; "
                "set run_cap in the sweep file to bound it")
    if spec.method == "grid":
        capped = f", capped by run_cap {spec.run_cap}" if spec.run_cap else ""
        return f"runs: {total} (grid of {' x '.join(_axis_sizes(spec)) or '1'}{capped})", None
    return f"runs: {total} (run_cap of a {spec.method} search)", None


def _axis_sizes(spec: SweepSpec) -> list[str]:
    sizes = []
    for key, body in spec.parameters.items():
        if "values" in body:
            sizes.append(f"{len(body['values'])} {key}")
        elif nested_values(body):
            sizes.append(f"{len(nested_values(body))} {key}")
    return sizes


def progress(spec: SweepSpec, runs: list[RunRecord]) -> dict[str, Any]:
    """Run counts by state: ``finished`` (finished, diverged or early-stopped), ``running``,
    ``pending`` (requeued, or not proposed yet), ``failed``, ``cancelled``, out of ``total``
    (`planned_runs`; None when unbounded)."""
    counts = Counter(run.state for run in runs)
    total = planned_runs(spec)
    finished = sum(counts[state] for state in SUCCESS)
    stopped = {state: counts[state] for state in (State.RUNNING, State.FAILED, State.CANCELLED)}
    if total is not None:
        pending = max(total - finished - sum(stopped.values()), counts[State.PENDING])
    else:
        pending = counts[State.PENDING]
    return {State.FINISHED: finished, **stopped, State.PENDING: pending, "total": total}


def progress_text(counts: dict[str, Any]) -> str:
    """``2/6 finished, 1 running, 3 pending, 0 failed`` (``cancelled`` only when there are)."""
    total = counts["total"] if counts["total"] is not None else "unbounded"
    shown = [State.RUNNING, State.PENDING, State.FAILED] + ([State.CANCELLED] if counts.get(State.CANCELLED) else [])
    return ", ".join([f"{counts[State.FINISHED]}/{total} {State.FINISHED}", *(f"{counts[s]} {s}" for s in shown)])


def planned_epochs(spec: SweepSpec, run: RunRecord) -> int:
    """The epochs a run is configured for."""
    return {"epochs": TrainConfig.model_fields["epochs"].default, **spec.fixed, **run.config}["epochs"]


def set_state(store: Store, sweep_id: str, state: str) -> SweepRecord:
    """pause / resume / cancel. Cancelling also cancels the runs not yet started."""
    sweep = store.get_sweep(sweep_id)
    allowed = {State.PAUSED: (State.RUNNING,), State.RUNNING: (State.PAUSED,), State.CANCELLED: (State.RUNNING, State.PAUSED)}
    if sweep.state not in allowed[state]:
        raise UserError(f"sweep {sweep_id} is {sweep.state}; cannot make it {state}")
    store.set_sweep_state(sweep_id, state)
    return store.get_sweep(sweep_id)



def retry(store: Store, sweep_id: str, states: tuple[str, ...] = RETRYABLE) -> list[int]:
    """Requeue the runs whose latest attempt ended in ``states`` (and that are over) as new
    attempts, in one transaction; returns their run numbers. See `Store.retry_runs`."""
    unknown = sorted(set(states) - set(RETRYABLE) - {State.CANCELLED})
    if unknown or not states:
        raise UserError(f"--state: expected some of {', '.join(RETRYABLE)}, cancelled; not {','.join(unknown) or 'nothing'}")
    if store.get_sweep(sweep_id).backend != "local":
        raise UserError(f"sweep {sweep_id}: retry needs a local sweep (W&B's controller keeps wandb-backend runs)")
    return store.retry_runs(sweep_id, tuple(states))


def describe(store: Store, sweep_id: str) -> dict[str, Any]:
    """Everything ``sweep show`` prints: the sweep, state counts and one entry per attempt.

    Each entry: ``run`` (proposal number), ``config`` (flat dict of the spec's
    parameters), ``state`` (the attempt's), ``run_state``, ``attempt``,
    ``wandb_run_id``, ``error`` (a failed attempt's one-line error, else None),
    ``wandb_incomplete`` (why the attempt's W&B file is incomplete, else None), ``epochs`` (stored so far) and ``epochs_planned``, ``metrics``
    (final values keyed as logged) and ``latest`` (the last stored epoch's row, so a
    running or interrupted attempt shows where it got to), ``verdict`` and ``verdict_reason``
    (`lrtrack.verdicts`, on the attempt the report shows; None on the others). ``sweep.progress`` is
    `progress`'s counts.
    """
    from lrtrack.report.study import load_study, shown_attempt

    sweep = store.get_sweep(sweep_id)
    spec = spec_of(sweep)
    runs = store.runs(sweep_id)
    verdicts = {row.run: row.verdict for row in load_study(store, sweep_id).rows} if sweep.backend == "local" else {}
    entries = []
    for run in runs:
        config = flat_settings({key: run.config.get(key) for key in spec.parameters})
        shown = shown_attempt(run)
        for attempt in run.attempts:
            verdict = verdicts.get(run.number) if attempt is shown else None
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
                    "epochs_planned": planned_epochs(spec, run),
                    "error": attempt.summary.get("error"),
                    "wandb_incomplete": attempt.summary.get(INCOMPLETE),
                    "metrics": dict(attempt.summary),
                    "latest": dict(attempt.history[-1]) if attempt.history else {},
                    "verdict": verdict.label if verdict else None,
                    "verdict_reason": verdict.reason if verdict else None,
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
            "swept": spec.swept,
            "run_states": dict(Counter(run.state for run in runs)),
            "progress": progress(spec, runs),
            "max_attempts": sweep.max_attempts,
            "created_at": sweep.created_at.isoformat() if sweep.created_at else None,
        },
        "runs": entries,
    }
