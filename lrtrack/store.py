"""The sweep store: sweeps, their runs, attempts and per-epoch history in a real database.

Shaped like optuna's storages. `Store` is the interface: small documented methods
and nothing else (no backend detail leaves this module). `SqlStore` implements
it with SQLAlchemy for embedded SQLite (the default, ``.lrtrack/store.db``) and
PostgreSQL (many machines sharing one store). `open_store(url)` picks and opens one;
``open_store(url, create=False)``, for commands that act on an existing sweep,
refuses a URL with no store there instead of creating one.

Vocabulary
----------
- A **sweep** is one registered `SweepSpec` (its id is what ``lrtrack agent`` takes).
- A **run** is one config W&B's ``sweeps`` engine proposed (``{"lr": 0.001}``);
  its states and an attempt's are `lrtrack.states.State` (what each means is said there).
- An **attempt** is one try at training a run, by one agent; it has its own W&B
  run id, heartbeat, per-epoch history and summary. A run whose agent died is
  requeued (its attempt marked ``crashed``) and tried again. Only ``failed`` and
  ``crashed`` attempts are failures: a run fails for good after the sweep's
  ``max_attempts`` of them; ``interrupted`` (SIGTERM, Ctrl-C), ``cancelled`` and
  ``superseded`` attempts never count. ``max_attempts`` belongs to the sweep
  (`Store.create_sweep`, `Store.set_max_attempts`), not to the agent that claims.

Exactly-once claims
-------------------
`Store.claim_run` is one transaction that locks the sweep first (``BEGIN
IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` on PostgreSQL), requeues stale
attempts, then hands out a pending run or asks the engine for a new config. No
two agents can interleave inside it, so no grid point is run twice or skipped.
A grid sweep's points are enumerated once, when the sweep is created (the
``sweeps`` engine run to exhaustion, in its own order), and stored in
``lrtrack_grid_points``; its claims take the next free point (or a requeued
run) with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and never read the sweep's
other runs, so a claim costs the same at the first point and the last, and
concurrent claimers do not queue on one lock (on SQLite, ``BEGIN IMMEDIATE``
still serialises them). Random and bayes sweeps ask the engine at every claim.

The sweep's scheduling rules that must be atomic with a claim live inside that
transaction, in `SqlStore.claim_run` and not in `lrtrack.sweep`: requeueing stale
attempts, the ``run_cap``, and marking the sweep ``finished`` when the engine has
nothing left and no run is in flight. What to propose next is the engine's
(`lrtrack.sweep.propose`), called from inside the transaction.

Every time (heartbeats, staleness) comes from the database's clock, never from
the agents' clocks, which may disagree across machines.

Every driver error leaves the store as one `StoreError` naming the store (the
password masked); lost connections are retried with backoff first, so agents
ride out a database restart.

Idempotent retries
------------------
A transaction whose COMMIT was sent but whose acknowledgement was lost is retried
by `SqlStore._do`. The writes that must not happen twice carry a token chosen by
the caller before the first try: a claim carries the new attempt's W&B run id
(`Store.claim_run` first looks for an attempt holding it), a new sweep its id.
A retry that finds its token already committed returns that instead of writing again.
``tests/test_faults.py`` drops real connections around COMMIT (``tests/pgproxy.py``).

A store that disappears
-----------------------
An SQLite store remembers the identity (device, inode) of its file when opened and
checks it before every transaction: a file deleted or replaced under running
agents raises `StoreGoneError` instead of writing into a new, empty file (or into
the deleted one). A database whose tables were dropped fails with "no such table",
which is a `StoreError` too.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import string
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from lrtrack.errors import (
    LrtrackWarning, NoStoreError, StoreError, StoreGoneError, StoreOpenError, UnknownSweepError, UserError,
)
from lrtrack.states import FAILURES, RETRYABLE, RUN_ENDS, State

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

#: Where the store lives when neither ``--store`` nor ``$LRTRACK_STORE`` says.
DEFAULT_STORE = "sqlite:///.lrtrack/store.db"
#: Bumped whenever the tables change; a store of another version is refused on open.
SCHEMA_VERSION = 2  # 2: lrtrack_sweeps.max_attempts, lrtrack_grid_points
#: Failed or crashed attempts after which a run fails for good, unless the sweep says otherwise.
DEFAULT_MAX_ATTEMPTS = 3
#: W&B run ids (and claim tokens) as lrtrack draws them and W&B accepts them: safe in a path or a glob.
SAFE_ID = r"[A-Za-z0-9_-]{1,64}"


#: Attempt states whose agent may still be at work (a crashed attempt's agent may be alive, only
#: silent): their per-epoch rows may still grow, and their agent's finish is still to be recorded.
GROWING = (State.RUNNING, State.CRASHED)

#: How long one SQLite statement waits for another agent's write lock before `SqlStore._do` retries.
SQLITE_BUSY_SECONDS = 1.0
#: The error when a stored JSON value does not decode.
NOT_JSON = "the store holds a value that is not JSON (a corrupt or tampered store)"

#: Schema upgrades, in order: ``MIGRATIONS[v - 1:]`` brings a version-``v`` store to `SCHEMA_VERSION`.
MIGRATIONS = (
    f"ALTER TABLE lrtrack_sweeps ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT {DEFAULT_MAX_ATTEMPTS}",  # 1 -> 2
)

#: Proposes the next config from the sweep's runs so far, or None when the search is exhausted.
Proposer = Callable[[list["RunRecord"]], "dict[str, Any] | None"]


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class SweepRecord:
    id: str
    name: str
    backend: str  #: ``local`` (runs live here) or ``wandb`` (W&B's hosted controller)
    state: str  #: ``running``, ``paused``, ``cancelled`` or ``finished``
    spec: dict[str, Any]  #: ``SweepSpec.model_dump(mode="json")``
    wandb_config: dict[str, Any]  #: ``SweepSpec.to_wandb()``: what the sweeps engine reads
    project: str
    entity: str | None
    created_at: datetime
    max_attempts: int = DEFAULT_MAX_ATTEMPTS  #: failed/crashed attempts before a run fails for good


@dataclass
class AttemptRecord:
    id: int
    run_id: int
    number: int
    state: str  #: ``running``, ``crashed``, ``interrupted``, ``superseded`` or the run state it ended in
    worker: str
    wandb_run_id: str | None
    started_at: datetime
    ended_at: datetime | None
    summary: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RunRecord:
    id: int
    sweep_id: str
    number: int
    config: dict[str, Any]  #: the engine's proposal, flat: ``{"lr": 0.001}``
    state: str
    attempts: list[AttemptRecord] = field(default_factory=list)

    @property
    def failures(self) -> int:
        """Attempts that count toward the sweep's ``max_attempts`` (failed or crashed)."""
        return sum(attempt.state in FAILURES for attempt in self.attempts)

    @property
    def latest(self) -> AttemptRecord | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def summary(self) -> dict[str, Any]:
        """The latest attempt's summary (what the engine and reports read)."""
        return self.latest.summary if self.latest else {}

    @property
    def history(self) -> list[dict[str, Any]]:
        """The latest attempt's per-epoch rows."""
        return self.latest.history if self.latest else []


@dataclass
class Claim:
    """What `Store.claim_run` hands out: a run and its new attempt, or the reason there is none.

    Reasons: ``wait`` (nothing to claim now, but runs are in flight elsewhere),
    ``exhausted``, ``run_cap``, ``paused``, ``cancelled``, ``finished``.
    """

    run: RunRecord | None = None
    attempt: AttemptRecord | None = None
    reason: str | None = None


# ---------------------------------------------------------------- the interface


class Store:
    """Sweeps, runs and attempts. Every method is one transaction.

    Subclasses implement the abstract methods; the helpers below them are shared.
    """

    #: The store's URL with any password masked: safe to print and log.
    url: str
    #: The URL as given (with the password): only for handing to child agents.
    raw_url: str

    # -- sweeps
    def create_sweep(self, *, name: str, backend: str, spec: dict[str, Any], wandb_config: dict[str, Any],
                     project: str, entity: str | None, sweep_id: str | None = None,
                     max_attempts: int = DEFAULT_MAX_ATTEMPTS, grid_points: list[dict[str, Any]] | None = None,
                     ) -> SweepRecord:
        """Register a sweep; ``sweep_id`` None draws a fresh 8-character id.

        ``grid_points``, every config of a grid in the engine's order, makes claims
        take those points in turn instead of asking the engine (see the module docstring)."""
        raise NotImplementedError

    def set_max_attempts(self, sweep_id: str, max_attempts: int) -> None:
        """Change how many failed/crashed attempts a run of the sweep may have; runs already
        failed stay failed (``lrtrack sweep retry`` style requeueing is a separate decision)."""
        raise NotImplementedError

    def get_sweep(self, sweep_id: str) -> SweepRecord:
        """The sweep, or `UnknownSweepError`."""
        raise NotImplementedError

    def list_sweeps(self) -> list[SweepRecord]:
        """All sweeps, newest first."""
        raise NotImplementedError

    def set_sweep_state(self, sweep_id: str, state: str) -> None:
        """Pause, resume, cancel or finish a sweep. Cancelling also cancels its pending runs."""
        raise NotImplementedError

    # -- runs
    def runs(self, sweep_id: str) -> list[RunRecord]:
        """Every run of the sweep with its attempts and their histories, in proposal order."""
        raise NotImplementedError

    def run_summaries(self, sweep_id: str | None = None) -> list[RunRecord]:
        """Every run of the sweep (of every sweep when None) with its attempts and their summaries,
        but no per-epoch rows (each attempt's ``history`` is empty; `histories` reads them): what a
        page listing thousands of runs needs, read in one query. In proposal order per sweep."""
        raise NotImplementedError

    def sweep_version(self, sweep_id: str) -> tuple:
        """A value that changes whenever the sweep's state, its runs, their attempts or their
        per-epoch rows change (counts and latest times, read in one transaction): a reader that
        kept what it read under an equal value has nothing to read again. (An epoch row rewritten
        in place, which only a retried write does, does not change it.)"""
        raise NotImplementedError

    def histories(self, attempt_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
        """The per-epoch rows of each of ``attempt_ids``, in epoch order (an attempt with none: absent)."""
        raise NotImplementedError

    def claim_run(self, sweep_id: str, worker: str, propose: Proposer, *, grace_seconds: float,
                  wandb_run_id: str | None = None) -> Claim:
        """Atomically: requeue attempts silent for ``grace_seconds``, then claim a pending run
        or a new one from ``propose``. See the module docstring.

        ``wandb_run_id`` (the new attempt's W&B run, drawn before the call) is stored in
        the same transaction and doubles as the claim token: a retry after a lost COMMIT
        returns the attempt already claimed instead of claiming a second one."""
        raise NotImplementedError

    def find_claim(self, wandb_run_id: str) -> tuple[int, int] | None:
        """(attempt id, attempt number) of the attempt claimed with ``wandb_run_id``, if it
        was committed (an agent stopped during its claim looks it up to release it)."""
        raise NotImplementedError

    def retry_runs(self, sweep_id: str, states: tuple[str, ...]) -> list[int]:
        """In one transaction: every run that is over and whose latest attempt ended in one of
        ``states`` goes back to pending (a finished sweep runs again); returns their numbers.
        Each is then claimed as a new attempt, one beyond any attempt limit."""
        raise NotImplementedError

    # -- attempts
    def set_wandb_run_id(self, attempt_id: int, wandb_run_id: str) -> None:
        """Record which W&B run belongs to the attempt."""
        raise NotImplementedError

    def heartbeat(self, attempt_id: int) -> str | None:
        """Mark the attempt alive (database clock). Returns None to go on, or why to stop:
        ``cancelled`` (the sweep was cancelled) or ``superseded`` (the attempt was
        declared crashed after a silence longer than the grace period, and its run
        handed to another agent: training on would only duplicate that run)."""
        raise NotImplementedError

    def log_epoch(self, attempt_id: int, metrics: dict[str, Any]) -> None:
        """Store one epoch's metrics row (and count as a heartbeat)."""
        raise NotImplementedError

    def finish_attempt(self, attempt_id: int, state: str, summary: dict[str, Any],
                       history: list[dict[str, Any]] | None = None) -> tuple[str, str]:
        """End the attempt in ``state``; returns the attempt's recorded state (``superseded``
        for a late finisher whose run was taken over) and the run's state after it
        (``pending`` when requeued). Its run ends too, or goes back to pending when the state is
        retryable and the sweep's ``max_attempts`` failures are not used up.
        Only a ``running`` attempt changes: finishing it again is a no-op (a retried
        COMMIT). ``history`` rows not stored yet (epoch writes that failed) are stored."""
        raise NotImplementedError

    def add_to_summary(self, attempt_id: int, entries: dict[str, Any]) -> None:
        """Add ``entries`` to the summary of an attempt that has ended (a note found after it was
        recorded, such as ``wandb_incomplete``), in one transaction. Its state and its run's
        do not change, and an attempt still ``running`` is left alone. Its heartbeat time
        becomes now (the agent's last word on it), so `sweep_version` changes with it."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def new_id() -> str:
    """An 8-character id of lowercase letters and digits, like W&B's sweep and run ids."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def run_state_after(attempt_state: str, failures: int, max_attempts: int) -> str:
    """The run's state once an attempt ended in ``attempt_state``; ``failures`` counts the
    run's failed and crashed attempts, this one included."""
    if attempt_state == State.INTERRUPTED:
        return State.PENDING  # stopped on purpose (Ctrl-C, SIGTERM): always worth another try
    if attempt_state in RETRYABLE:
        return State.PENDING if failures < max_attempts else State.FAILED
    return attempt_state


def check_max_attempts(value: int) -> int:
    if not isinstance(value, int) or value < 1:
        raise UserError(f"--max-attempts: expected a whole number >= 1, not {value!r}")
    return value


# ---------------------------------------------------------------- SQLAlchemy implementation


def _tables():
    """The schema (built lazily: SQLAlchemy is imported only when a store is opened)."""
    from sqlalchemy import (Boolean, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text,
                            UniqueConstraint)
    from sqlalchemy.types import TypeDecorator

    class JSONText(TypeDecorator):
        """JSON kept as text: NaN/inf survive (a diverged loss), and nothing is ever unpickled."""

        impl = Text
        cache_ok = True

        def process_bind_param(self, value, dialect):
            return None if value is None else json.dumps(value, default=str)

        def process_result_value(self, value, dialect):
            try:
                return None if value is None else json.loads(value)
            except ValueError:
                raise StoreError(NOT_JSON) from None

    metadata = MetaData()
    Table("lrtrack_meta", metadata, Column("key", String(64), primary_key=True), Column("value", Text, nullable=False))
    Table(
        "lrtrack_sweeps", metadata,
        Column("id", String(64), primary_key=True),
        Column("name", String(256), nullable=False),
        Column("backend", String(16), nullable=False),
        Column("state", String(16), nullable=False),
        Column("spec", JSONText, nullable=False),
        Column("wandb_config", JSONText, nullable=False),
        Column("project", String(256), nullable=False),
        Column("entity", String(256)),
        Column("created_at", Float, nullable=False),
        Column("max_attempts", Integer, nullable=False, server_default=str(DEFAULT_MAX_ATTEMPTS)),  # schema 2
    )
    Table(
        "lrtrack_runs", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("sweep_id", String(64), ForeignKey("lrtrack_sweeps.id", ondelete="CASCADE"), nullable=False, index=True),
        Column("number", Integer, nullable=False),
        Column("config", JSONText, nullable=False),
        Column("state", String(16), nullable=False),
        UniqueConstraint("sweep_id", "number"),
        Index("ix_lrtrack_runs_state", "sweep_id", "state", "number"),  # a grid claim's pending-run lookup
    )
    Table(  # a grid's points, enumerated at creation; ``number`` is the run number it becomes
        "lrtrack_grid_points", metadata,
        Column("sweep_id", String(64), ForeignKey("lrtrack_sweeps.id", ondelete="CASCADE"), primary_key=True),
        Column("number", Integer, primary_key=True),
        Column("config", JSONText, nullable=False),
        Column("claimed", Boolean, nullable=False, default=False),
        Index("ix_lrtrack_grid_points_free", "sweep_id", "claimed", "number"),
    )
    Table(
        "lrtrack_attempts", metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("run_id", Integer, ForeignKey("lrtrack_runs.id", ondelete="CASCADE"), nullable=False, index=True),
        Column("number", Integer, nullable=False),
        Column("state", String(16), nullable=False),
        Column("worker", String(256), nullable=False),
        Column("wandb_run_id", String(64)),
        Column("started_at", Float, nullable=False),
        Column("heartbeat_at", Float, nullable=False),
        Column("ended_at", Float),
        Column("summary", JSONText),
        UniqueConstraint("run_id", "number"),
    )
    Table(
        "lrtrack_epochs", metadata,
        Column("attempt_id", Integer, ForeignKey("lrtrack_attempts.id", ondelete="CASCADE"), primary_key=True),
        Column("epoch", Integer, primary_key=True),
        Column("metrics", JSONText, nullable=False),
    )
    return metadata


class SqlStore(Store):
    """The store on SQLite or PostgreSQL through SQLAlchemy Core.

    The two databases differ in three places only, all in this class: how a
    transaction takes the write lock (`_begin_immediate` for SQLite, ``FOR
    UPDATE`` on the sweep row for PostgreSQL), how the database clock is read
    (`_now`), and how schema creation is serialised (`_create_schema`).
    """

    #: How long an operation keeps retrying a lost connection (database restarting).
    retry_seconds: float = 120.0
    #: Called between the tries of an operation being retried (`_do`), in the thread retrying:
    #: an agent raises a stop signal received meanwhile there, so that a database locked or
    #: unreachable for long does not also hold back a stop request.
    between_tries: Callable[[], None] | None = None

    def __init__(self, url: str, engine: Engine) -> None:
        self.raw_url = url
        self.url = engine.url.render_as_string(hide_password=True)
        self._engine = engine
        self._metadata = _tables()
        t = self._metadata.tables
        self._sweeps, self._runs = t["lrtrack_sweeps"], t["lrtrack_runs"]
        self._attempts, self._epochs, self._meta = t["lrtrack_attempts"], t["lrtrack_epochs"], t["lrtrack_meta"]
        self._points = t["lrtrack_grid_points"]
        self._is_sqlite = engine.dialect.name == "sqlite"
        #: The SQLite file and its (device, inode) once the store is open: see `_check_file`.
        self._file: tuple[Path, tuple[int, int]] | None = None

    # -- transactions

    def _remember_file(self) -> None:
        if self._is_sqlite:
            path = Path(self._engine.url.database)
            stat = path.stat()
            self._file = (path, (stat.st_dev, stat.st_ino))

    def _check_file(self) -> None:
        """Refuse to go on when the SQLite file was deleted or replaced since the store was opened."""
        if self._file is None:
            return
        path, identity = self._file
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise StoreGoneError(f"store {self.url}: the file was deleted while in use; stopping") from None
        if (stat.st_dev, stat.st_ino) != identity:
            raise StoreGoneError(f"store {self.url}: the file was replaced by another one while in use; stopping")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """One transaction: commit on success, roll back on any error; driver errors become `StoreError`."""
        from sqlalchemy.exc import SQLAlchemyError

        self._check_file()
        try:
            with self._engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"store {self.url}: {_driver_message(exc)}") from exc

    def _do(self, operation: Callable[[Connection], Any]) -> Any:
        """Run ``operation`` in a transaction, retrying with backoff while the error is transient
        (`_is_transient`) and ``retry_seconds`` are not used up.

        A lost connection or a busy database rolls the transaction back, so running it again is
        safe, except when only the COMMIT's acknowledgement was lost: the writes that must not
        happen twice carry a token for that (see "Idempotent retries" above).
        """
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.25
        while True:
            try:
                with self._transaction() as conn:
                    return operation(conn)
            except StoreError as exc:
                if not _is_transient(exc.__cause__) or time.monotonic() + delay > deadline:
                    raise
                if self.between_tries is not None:
                    self.between_tries()
                time.sleep(delay)
                if self.between_tries is not None:
                    self.between_tries()  # a signal during the sleep
                delay = min(delay * 2, 2.0)

    def _now(self, conn: Connection) -> float:
        """Seconds since the epoch by the database's clock (shared by every agent)."""
        from sqlalchemy import text

        if self._is_sqlite:
            return float(conn.execute(text("SELECT (julianday('now') - 2440587.5) * 86400.0")).scalar_one())
        return float(conn.execute(text("SELECT extract(epoch from clock_timestamp())")).scalar_one())

    def _create_schema(self, *, create: bool = True) -> None:
        """Create the tables on first use; refuse a store of another schema version.

        With ``create`` False a database without lrtrack's tables is refused
        (`NoStoreError`) and nothing is written to it.
        """
        from sqlalchemy import inspect, select, text

        def schema(conn: Connection) -> str | None:
            if not self._is_sqlite:  # several agents may open a new database at once
                conn.execute(text("SELECT pg_advisory_xact_lock(7163124)"))
            names = set(inspect(conn).get_table_names())
            if "lrtrack_meta" not in names:
                if names and self._is_sqlite:
                    raise StoreOpenError(f"{self.url}: not an lrtrack store (it holds other tables)")
                if not create:
                    raise NoStoreError(_no_store_message(self.url))
                self._metadata.create_all(conn)
                conn.execute(self._meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
                return str(SCHEMA_VERSION)
            version = conn.execute(select(self._meta.c.value).where(self._meta.c.key == "schema_version")).scalar()
            if version and version.isdigit() and 1 <= int(version) < SCHEMA_VERSION:
                for step in MIGRATIONS[int(version) - 1:]:
                    conn.execute(text(step))
                self._metadata.create_all(conn)  # tables new since that version (1 -> 2: lrtrack_grid_points)
                conn.execute(self._meta.update().where(self._meta.c.key == "schema_version")
                             .values(value=str(SCHEMA_VERSION)))
                version = str(SCHEMA_VERSION)
            return version

        deadline = time.monotonic() + 60
        while True:
            try:
                with self._transaction() as conn:
                    version = schema(conn)
                break
            except StoreError as exc:  # SQLite's short busy timeout: wait for other agents' writes
                locked = self._is_sqlite and "database is locked" in str(exc)
                if not locked or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        if version != str(SCHEMA_VERSION):
            raise StoreOpenError(
                f"{self.url}: store schema version {version}, this lrtrack needs {SCHEMA_VERSION} "
                "(use a new store, or the lrtrack version that created it)"
            )

    # -- sweeps

    def create_sweep(self, *, name, backend, spec, wandb_config, project, entity, sweep_id=None,
                     max_attempts=DEFAULT_MAX_ATTEMPTS, grid_points=None) -> SweepRecord:
        from sqlalchemy import select

        created = sweep_id or new_id()  # drawn once: a retried COMMIT finds it and creates nothing
        tries = 0

        def insert(conn: Connection) -> str:
            nonlocal tries
            tries += 1
            retry = tries > 1  # only a retry may find the sweep already there (its lost COMMIT went through)
            if not retry or conn.execute(select(self._sweeps.c.id).where(self._sweeps.c.id == created)).first() is None:
                conn.execute(self._sweeps.insert().values(
                    id=created, name=name, backend=backend, state=State.RUNNING, spec=spec, wandb_config=wandb_config,
                    project=project, entity=entity, created_at=self._now(conn),
                    max_attempts=check_max_attempts(max_attempts),
                ))
                if grid_points:
                    conn.execute(self._points.insert(), [
                        {"sweep_id": created, "number": number, "config": config, "claimed": False}
                        for number, config in enumerate(grid_points, start=1)])
            return created

        return self.get_sweep(self._do(insert))

    def set_max_attempts(self, sweep_id: str, max_attempts: int) -> None:
        check_max_attempts(max_attempts)
        self.get_sweep(sweep_id)  # unknown id: UnknownSweepError
        self._do(lambda conn: conn.execute(self._sweeps.update().where(self._sweeps.c.id == sweep_id)
                                           .values(max_attempts=max_attempts)))

    def get_sweep(self, sweep_id: str) -> SweepRecord:
        return self._do(lambda conn: self._read_sweep(conn, sweep_id))

    def list_sweeps(self) -> list[SweepRecord]:
        from sqlalchemy import select

        rows = self._do(lambda conn: conn.execute(select(self._sweeps).order_by(self._sweeps.c.created_at.desc())).all())
        return [_sweep_record(row) for row in rows]

    def set_sweep_state(self, sweep_id: str, state: str) -> None:
        def update(conn: Connection) -> None:
            conn.execute(self._sweeps.update().where(self._sweeps.c.id == sweep_id).values(state=state))
            if state == State.CANCELLED:
                conn.execute(self._runs.update()
                             .where(self._runs.c.sweep_id == sweep_id, self._runs.c.state == State.PENDING)
                             .values(state=State.CANCELLED))

        self.get_sweep(sweep_id)  # unknown id: UnknownSweepError
        self._do(update)

    # -- runs

    def runs(self, sweep_id: str) -> list[RunRecord]:
        from sqlalchemy import text

        def load(conn: Connection) -> list[RunRecord]:
            if not self._is_sqlite:  # one snapshot for _load_runs' three queries while agents commit
                conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            return self._load_runs(conn, sweep_id)

        return self._do(load)

    def _load_runs(self, conn: Connection, sweep_id: str) -> list[RunRecord]:
        from sqlalchemy import select

        runs_t, attempts_t, epochs_t = self._runs, self._attempts, self._epochs
        runs = {
            row.id: RunRecord(row.id, row.sweep_id, row.number, row.config, row.state)
            for row in conn.execute(select(runs_t).where(runs_t.c.sweep_id == sweep_id).order_by(runs_t.c.number))
        }
        attempts: dict[int, AttemptRecord] = {}
        query = (select(attempts_t).join(runs_t, runs_t.c.id == attempts_t.c.run_id)
                 .where(runs_t.c.sweep_id == sweep_id).order_by(attempts_t.c.run_id, attempts_t.c.number))
        for row in conn.execute(query):
            attempt = AttemptRecord(
                row.id, row.run_id, row.number, row.state, row.worker, row.wandb_run_id,
                _datetime(row.started_at), _datetime(row.ended_at), row.summary or {},
            )
            attempts[row.id] = attempt
            runs[row.run_id].attempts.append(attempt)
        query = (select(epochs_t.c.attempt_id, epochs_t.c.metrics)
                 .join(attempts_t, attempts_t.c.id == epochs_t.c.attempt_id)
                 .join(runs_t, runs_t.c.id == attempts_t.c.run_id)
                 .where(runs_t.c.sweep_id == sweep_id).order_by(epochs_t.c.attempt_id, epochs_t.c.epoch))
        for attempt_id, metrics in conn.execute(query):
            attempts[attempt_id].history.append(metrics)
        return list(runs.values())

    def run_summaries(self, sweep_id: str | None = None) -> list[RunRecord]:
        from sqlalchemy import Text, select, type_coerce

        r, a = self._runs, self._attempts
        query = (select(r.c.id, r.c.sweep_id, r.c.number, type_coerce(r.c.config, Text), r.c.state,
                        a.c.id, a.c.number, a.c.state, a.c.worker, a.c.wandb_run_id, a.c.started_at, a.c.ended_at,
                        type_coerce(a.c.summary, Text))
                 .join(a, a.c.run_id == r.c.id, isouter=True)
                 .order_by(r.c.sweep_id, r.c.number, a.c.number))
        if sweep_id is not None:
            query = query.where(r.c.sweep_id == sweep_id)
        rows = self._do(lambda conn: conn.execute(query).all())
        configs = _decode_all(row[3] for row in rows)
        summaries = _decode_all(row[12] or "null" for row in rows)
        runs: dict[int, RunRecord] = {}
        for row, config, summary in zip(rows, configs, summaries):
            run_id, sweep, number, _, state, attempt_id, *attempt, started, ended, _ = row
            run = runs.get(run_id)
            if run is None:
                run = runs[run_id] = RunRecord(run_id, sweep, number, config, state)
            if attempt_id is not None:
                run.attempts.append(AttemptRecord(attempt_id, run_id, *attempt, _datetime(started), _datetime(ended),
                                                  summary or {}))
        return list(runs.values())

    def sweep_version(self, sweep_id: str) -> tuple:
        from sqlalchemy import func, select, text

        s, r, a, e = self._sweeps, self._runs, self._attempts, self._epochs

        def read(conn: Connection) -> tuple:
            if not self._is_sqlite:  # one snapshot for the four queries while agents commit
                conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            sweep = conn.execute(select(s.c.state, s.c.max_attempts).where(s.c.id == sweep_id)).one_or_none()
            runs = conn.execute(select(r.c.state, func.count()).where(r.c.sweep_id == sweep_id)
                                .group_by(r.c.state).order_by(r.c.state)).all()
            attempts = conn.execute(
                select(a.c.state, func.count(), func.count(a.c.wandb_run_id), func.max(a.c.id),
                       func.max(a.c.heartbeat_at), func.max(a.c.ended_at))
                .join(r, r.c.id == a.c.run_id).where(r.c.sweep_id == sweep_id)
                .group_by(a.c.state).order_by(a.c.state)).all()
            epochs = conn.execute(  # an ended attempt's rows are all in (finish_attempt): count the others'
                select(func.count()).select_from(e).join(a, a.c.id == e.c.attempt_id).join(r, r.c.id == a.c.run_id)
                .where(r.c.sweep_id == sweep_id, a.c.state.in_(GROWING))).scalar_one()
            return (tuple(sweep or ()), *(tuple(row) for row in runs), *(tuple(row) for row in attempts), epochs)

        return self._do(read)

    def histories(self, attempt_ids: Iterable[int]) -> dict[int, list[dict[str, Any]]]:
        from sqlalchemy import Text, func, select, type_coerce

        e = self._epochs
        ids = sorted(set(attempt_ids))
        result: dict[int, list[dict[str, Any]]] = {}
        for start in range(0, len(ids), 500):  # bounded IN lists (SQLite caps bound parameters)
            # one row per attempt, its rows' JSON joined by the database: a big sweep's 200,000
            # epoch rows come back as 10,000 (building a result row per epoch was most of the read)
            query = (select(e.c.attempt_id, func.count(), func.aggregate_strings(type_coerce(e.c.metrics, Text), ","))
                     .where(e.c.attempt_id.in_(ids[start:start + 500])).group_by(e.c.attempt_id))
            rows = self._do(lambda conn, query=query: conn.execute(query).all())
            for (attempt_id, count, _), history in zip(rows, _decode_all(f"[{text}]" for _, _, text in rows)):
                result[attempt_id] = _epoch_order(history, count)
        return result

    def claim_run(self, sweep_id, worker, propose, *, grace_seconds, wandb_run_id=None) -> Claim:
        def claim(conn: Connection) -> Claim:
            if wandb_run_id is not None and (done := self._claimed(conn, wandb_run_id)) is not None:
                runs = self._load_runs(conn, sweep_id)  # a retry whose first COMMIT went through
                run = next(r for r in runs if r.id == done[2])
                return Claim(run=run, attempt=next(a for a in run.attempts if a.id == done[0]))
            if self._has_grid_points(conn, sweep_id):
                return self._claim_grid_point(conn, sweep_id, worker, grace_seconds, wandb_run_id)
            sweep = self._read_sweep(conn, sweep_id, lock=True)
            if sweep.state != State.RUNNING:
                return Claim(reason=sweep.state)
            now = self._now(conn)
            self._requeue_stale(conn, sweep_id, now - grace_seconds, now, sweep.max_attempts)
            runs = self._load_runs(conn, sweep_id)
            run = next((r for r in runs if r.state == State.PENDING), None)
            reason = None
            if run is None:
                cap = sweep.wandb_config.get("run_cap")
                if cap and len(runs) >= cap:
                    reason = "run_cap"
                elif (config := propose(runs)) is None:
                    reason = "exhausted"
                else:
                    run = self._insert_run(conn, sweep_id, max((r.number for r in runs), default=0) + 1, config)
            if run is None:
                if any(r.state == State.RUNNING for r in runs):
                    return Claim(reason="wait")  # another agent's run may still go stale
                conn.execute(self._sweeps.update().where(self._sweeps.c.id == sweep_id).values(state=State.FINISHED))
                return Claim(reason=reason)
            return Claim(run=run, attempt=self._insert_attempt(conn, run, worker, now, wandb_run_id))

        return self._do(claim)

    def _claimed(self, conn: Connection, wandb_run_id: str) -> tuple[int, int, int] | None:
        """(attempt id, number, run id) of the attempt holding claim token ``wandb_run_id``."""
        from sqlalchemy import select

        a = self._attempts
        row = conn.execute(select(a.c.id, a.c.number, a.c.run_id).where(a.c.wandb_run_id == wandb_run_id)).first()
        return None if row is None else (row.id, row.number, row.run_id)

    def find_claim(self, wandb_run_id: str) -> tuple[int, int] | None:
        found = self._do(lambda conn: self._claimed(conn, wandb_run_id))
        return None if found is None else found[:2]

    def _read_sweep(self, conn: Connection, sweep_id: str, *, lock: bool = False) -> SweepRecord:
        """The sweep row; with ``lock``, holding its write lock until the transaction ends."""
        from sqlalchemy import select

        query = select(self._sweeps).where(self._sweeps.c.id == sweep_id)
        row = conn.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise UnknownSweepError(f"unknown sweep id {sweep_id!r} in store {self.url}")
        return _sweep_record(row)

    def _requeue_stale(self, conn: Connection, sweep_id: str, cutoff: float, now: float, max_attempts: int) -> None:
        """Attempts whose heartbeat stopped before ``cutoff`` crashed: requeue (or fail) their runs."""
        from sqlalchemy import select

        a, r = self._attempts, self._runs
        stale = conn.execute(
            select(a.c.id, a.c.run_id, a.c.number).join(r, r.c.id == a.c.run_id)
            .where(r.c.sweep_id == sweep_id, a.c.state == State.RUNNING, a.c.heartbeat_at < cutoff).order_by(a.c.id)
        ).all()
        for attempt_id, run_id, number in stale:
            marked = conn.execute(a.update().where(a.c.id == attempt_id, a.c.state == State.RUNNING).values(
                state=State.CRASHED, ended_at=now, summary={"state": State.CRASHED, "error": "heartbeat lost"}))
            if marked.rowcount == 0:
                continue  # a concurrent grid claim requeued it first
            conn.execute(r.update().where(r.c.id == run_id, r.c.state == State.RUNNING)
                         .values(state=run_state_after(State.CRASHED, self._failures(conn, run_id), max_attempts)))

    def _failures(self, conn: Connection, run_id: int) -> int:
        """The run's failed and crashed attempts (what ``max_attempts`` limits)."""
        from sqlalchemy import func, select

        a = self._attempts
        return conn.execute(select(func.count()).where(a.c.run_id == run_id, a.c.state.in_(FAILURES))).scalar_one()

    def _insert_run(self, conn: Connection, sweep_id: str, number: int, config: dict[str, Any]) -> RunRecord:
        result = conn.execute(self._runs.insert().values(sweep_id=sweep_id, number=number, config=config, state=State.PENDING))
        return RunRecord(result.inserted_primary_key[0], sweep_id, number, config, State.PENDING)

    # -- grid sweeps: claims that do not read the sweep's runs (module docstring)

    def _has_grid_points(self, conn: Connection, sweep_id: str) -> bool:
        from sqlalchemy import select

        return conn.execute(select(self._points.c.number).where(self._points.c.sweep_id == sweep_id).limit(1)).first() \
            is not None

    def _claim_grid_point(self, conn: Connection, sweep_id: str, worker: str, grace_seconds: float,
                          wandb_run_id: str | None) -> Claim:
        """A requeued run first, else the next free grid point, each locked with SKIP LOCKED:
        concurrent claimers take different rows instead of waiting on one lock."""
        from sqlalchemy import select

        r, a, p = self._runs, self._attempts, self._points
        sweep = self._read_sweep(conn, sweep_id)
        if sweep.state != State.RUNNING:
            return Claim(reason=sweep.state)
        now = self._now(conn)
        self._requeue_stale(conn, sweep_id, now - grace_seconds, now, sweep.max_attempts)
        row = conn.execute(select(r).where(r.c.sweep_id == sweep_id, r.c.state == State.PENDING)
                           .order_by(r.c.number).limit(1).with_for_update(skip_locked=True)).first()
        if row is not None:
            run = RunRecord(row.id, sweep_id, row.number, row.config, row.state)
            run.attempts = [AttemptRecord(x.id, x.run_id, x.number, x.state, x.worker, x.wandb_run_id,
                                          _datetime(x.started_at), _datetime(x.ended_at), x.summary or {})
                            for x in conn.execute(select(a).where(a.c.run_id == row.id).order_by(a.c.number))]
            return Claim(run=run, attempt=self._insert_attempt(conn, run, worker, now, wandb_run_id))
        free = (select(p.c.number, p.c.config).where(p.c.sweep_id == sweep_id, p.c.claimed.is_(False))
                .order_by(p.c.number).limit(1))
        point = conn.execute(free.with_for_update(skip_locked=True)).first()
        if point is not None:
            conn.execute(p.update().where(p.c.sweep_id == sweep_id, p.c.number == point.number).values(claimed=True))
            run = self._insert_run(conn, sweep_id, point.number, point.config)
            return Claim(run=run, attempt=self._insert_attempt(conn, run, worker, now, wandb_run_id))
        # Nothing free for us. Points or runs locked by claimers still in their transaction,
        # and runs in flight (which may go stale), mean wait; otherwise the grid is done.
        in_flight = select(r.c.id).where(r.c.sweep_id == sweep_id, r.c.state.in_((State.PENDING, State.RUNNING))).limit(1)
        if conn.execute(free).first() is not None or conn.execute(in_flight).first() is not None:
            return Claim(reason="wait")
        conn.execute(self._sweeps.update().where(self._sweeps.c.id == sweep_id, self._sweeps.c.state == State.RUNNING)
                     .values(state=State.FINISHED))
        return Claim(reason="exhausted")

    def retry_runs(self, sweep_id: str, states: tuple[str, ...]) -> list[int]:
        from sqlalchemy import func, select

        r, a, s = self._runs, self._attempts, self._sweeps

        def retry(conn: Connection) -> list[int]:
            self._read_sweep(conn, sweep_id, lock=True)
            latest = (select(a.c.run_id, func.max(a.c.number).label("number")).group_by(a.c.run_id).subquery())
            numbers = [number for (number,) in conn.execute(
                select(r.c.number).join(latest, latest.c.run_id == r.c.id)
                .join(a, (a.c.run_id == r.c.id) & (a.c.number == latest.c.number))
                .where(r.c.sweep_id == sweep_id, r.c.state.in_(RUN_ENDS), a.c.state.in_(states))
                .order_by(r.c.number))]
            if numbers:
                conn.execute(r.update().where(r.c.sweep_id == sweep_id, r.c.number.in_(numbers)).values(state=State.PENDING))
                conn.execute(s.update().where(s.c.id == sweep_id, s.c.state == State.FINISHED).values(state=State.RUNNING))
            return numbers

        return self._do(retry)

    def _insert_attempt(self, conn: Connection, run: RunRecord, worker: str, now: float,
                        wandb_run_id: str | None) -> AttemptRecord:
        number = len(run.attempts) + 1
        result = conn.execute(self._attempts.insert().values(
            run_id=run.id, number=number, state=State.RUNNING, worker=worker, started_at=now, heartbeat_at=now,
            wandb_run_id=wandb_run_id))
        conn.execute(self._runs.update().where(self._runs.c.id == run.id).values(state=State.RUNNING))
        run.state = State.RUNNING
        attempt = AttemptRecord(result.inserted_primary_key[0], run.id, number, State.RUNNING, worker, wandb_run_id,
                                _datetime(now), None)
        run.attempts.append(attempt)
        return attempt

    # -- attempts

    def set_wandb_run_id(self, attempt_id: int, wandb_run_id: str) -> None:
        a = self._attempts
        self._do(lambda conn: conn.execute(a.update().where(a.c.id == attempt_id).values(wandb_run_id=wandb_run_id)))

    def heartbeat(self, attempt_id: int) -> str | None:
        from sqlalchemy import select

        a, r, s = self._attempts, self._runs, self._sweeps

        def beat(conn: Connection) -> str | None:
            attempt_state, sweep_state = conn.execute(
                select(a.c.state, s.c.state)
                .join(r, r.c.id == a.c.run_id).join(s, s.c.id == r.c.sweep_id).where(a.c.id == attempt_id)
            ).one()
            if sweep_state == State.CANCELLED:
                return State.CANCELLED
            if attempt_state != State.RUNNING:
                return State.SUPERSEDED
            conn.execute(a.update().where(a.c.id == attempt_id).values(heartbeat_at=self._now(conn)))
            return None

        return self._do(beat)

    def log_epoch(self, attempt_id: int, metrics: dict[str, Any]) -> None:
        a = self._attempts

        def insert(conn: Connection) -> None:
            conn.execute(self._epochs.delete().where(self._epochs.c.attempt_id == attempt_id,
                                                     self._epochs.c.epoch == int(metrics["epoch"])))
            conn.execute(self._epochs.insert().values(attempt_id=attempt_id, epoch=int(metrics["epoch"]), metrics=metrics))
            conn.execute(a.update().where(a.c.id == attempt_id, a.c.state == State.RUNNING)
                         .values(heartbeat_at=self._now(conn)))

        self._do(insert)

    def finish_attempt(self, attempt_id: int, state: str, summary: dict[str, Any],
                       history: list[dict[str, Any]] | None = None) -> tuple[str, str]:
        from sqlalchemy import select

        a, r, s = self._attempts, self._runs, self._sweeps

        def finish(conn: Connection) -> tuple[str, str]:
            current, run_id, number, run_state, max_attempts = conn.execute(
                select(a.c.state, a.c.run_id, a.c.number, r.c.state, s.c.max_attempts)
                .join(r, r.c.id == a.c.run_id).join(s, s.c.id == r.c.sweep_id).where(a.c.id == attempt_id)).one()
            if current not in GROWING:
                return current, run_state  # recorded already: a retried COMMIT, or a second cleanup
            stored = set(conn.execute(select(self._epochs.c.epoch).where(self._epochs.c.attempt_id == attempt_id))
                         .scalars())
            for row in history or []:
                if int(row["epoch"]) not in stored:  # epochs whose own write failed: kept now
                    conn.execute(self._epochs.insert().values(attempt_id=attempt_id, epoch=int(row["epoch"]), metrics=row))
            newer = conn.execute(select(a.c.id).where(a.c.run_id == run_id, a.c.number > number)).first()
            if current == State.CRASHED:
                # A late finisher declared crashed: if another agent took its run over, its
                # result is kept as "superseded" (the run's result is the newer attempt's);
                # if nobody did yet, its own result stands and the run takes it.
                if newer:
                    conn.execute(a.update().where(a.c.id == attempt_id).values(
                        state=State.SUPERSEDED, summary=summary, ended_at=self._now(conn)))
                    return State.SUPERSEDED, run_state
            conn.execute(a.update().where(a.c.id == attempt_id).values(state=state, summary=summary,
                                                                       ended_at=self._now(conn)))
            after = run_state_after(state, self._failures(conn, run_id), max_attempts)
            # "failed" too: a late finish after a crash that had used up the attempts
            conn.execute(r.update().where(r.c.id == run_id, r.c.state.in_((State.RUNNING, State.PENDING, State.FAILED)))
                         .values(state=after))
            return state, after

        return self._do(finish)

    def add_to_summary(self, attempt_id: int, entries: dict[str, Any]) -> None:
        from sqlalchemy import select

        a = self._attempts

        def add(conn: Connection) -> None:
            state, summary = conn.execute(select(a.c.state, a.c.summary).where(a.c.id == attempt_id)).one()
            if state != State.RUNNING:
                conn.execute(a.update().where(a.c.id == attempt_id).values(
                    summary={**(summary or {}), **entries}, heartbeat_at=self._now(conn)))

        self._do(add)

    def running_hosts(self) -> set[str]:
        """Hosts of the agents with an attempt running now (an agent's worker name starts ``host:``)."""
        from sqlalchemy import select

        a = self._attempts
        workers = self._do(lambda conn: conn.execute(select(a.c.worker).where(a.c.state == State.RUNNING).distinct()).all())
        return {worker.split(":", 1)[0] for (worker,) in workers if ":" in worker}

    def close(self) -> None:
        self._engine.dispose()


# ---------------------------------------------------------------- opening a store


def open_store(url: str | os.PathLike | None = None, *, create: bool = True) -> SqlStore:
    """Open the store at ``url``, creating it on first use unless ``create`` is False.

    ``url`` None means ``$LRTRACK_STORE``, else ``sqlite:///.lrtrack/store.db``.
    Accepts ``sqlite:///PATH``, a plain file path, and ``postgresql://...``
    (driven by psycopg 3). A URL that cannot be opened raises `StoreOpenError`.

    ``create=False`` is for commands that act on an existing sweep: a missing (or
    empty) SQLite file, or a database without lrtrack's tables, raises `NoStoreError`
    and nothing is created: no file, no folder, no tables.
    """
    from sqlalchemy import create_engine, event
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    raw = str(url or os.environ.get("LRTRACK_STORE") or DEFAULT_STORE)
    if "://" not in raw:
        raw = f"sqlite:///{raw}"
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise StoreOpenError(f"--store {raw}: not a store URL (use sqlite:///PATH or postgresql://...)") from None
    shown = parsed.render_as_string(hide_password=True)

    if parsed.get_backend_name() == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise StoreOpenError(f"--store {shown}: an in-memory SQLite store cannot be shared; give a file path")
        path = Path(parsed.database).expanduser().resolve()
        if create:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreOpenError(f"--store {shown}: cannot create {path.parent} ({exc.strerror})") from None
        elif _no_sqlite_store(path):
            raise NoStoreError(_no_store_message(shown))
        parsed = parsed.set(drivername="sqlite+pysqlite", database=str(path))
        # A short busy timeout, retried by `SqlStore._do` ("database is locked"): a signal is
        # handled between tries instead of after a minute blocked inside SQLite.
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_SECONDS})
        if not create:
            event.listen(engine, "do_connect", _sqlite_open_existing)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _begin_immediate)
    elif parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 10})
    else:
        raise StoreOpenError(f"--store {shown}: unsupported store (use sqlite:///PATH or postgresql://...)")

    store = SqlStore(parsed.render_as_string(hide_password=False), engine)
    try:
        store._create_schema(create=create)
        store._remember_file()
    except StoreOpenError:
        store.close()
        raise
    except StoreError as exc:  # every driver error, connection refused included (see `_transaction`)
        store.close()
        where = str(path) if parsed.get_backend_name() == "sqlite" else shown
        raise StoreOpenError(f"--store {where}: cannot open ({_driver_message(exc.__cause__)})") from None
    if store._is_sqlite:
        warn_if_sqlite_is_shared(store, path)
    return store


# ---------------------------------------------------------------- SQLite shared between machines

#: Filesystem types (``/proc/mounts``) of network and cluster filesystems, where SQLite's
#: file locks are not reliable: two agents could both take the write lock.
NETWORK_FILESYSTEMS = ("nfs", "nfs4", "cifs", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "fuse.ceph",
                       "glusterfs", "fuse.glusterfs", "fuse.sshfs", "afs", "panfs", "9p", "ocfs2")


def filesystem_type(path: Path, mounts: str | None = None) -> str | None:
    """The type of the filesystem holding ``path`` (the longest mount point above it in
    ``/proc/mounts``, or in ``mounts``, its text), or None where that cannot be told."""
    if mounts is None:
        try:
            mounts = Path("/proc/mounts").read_text()
        except OSError:
            return None
    best, kind = "", None
    target = str(path)
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > len(best):
            best, kind = point, fields[2]
    return kind


def warn_if_sqlite_is_shared(store: SqlStore, path: Path) -> None:
    """Warn (`LrtrackWarning`) when an SQLite store sits on a network filesystem, or when
    agents on other hosts are running from it: SQLite's locking is not safe there."""
    import socket
    import warnings

    hint = "use a PostgreSQL store for agents on several machines (--store postgresql://...)"
    kind = filesystem_type(path)
    if kind in NETWORK_FILESYSTEMS:
        warnings.warn(LrtrackWarning(
            f"the SQLite store {path} is on a network filesystem ({kind}), where SQLite's locking is not safe: {hint}"),
            stacklevel=3)
        return
    hosts = store.running_hosts() - {socket.gethostname()}
    if hosts:
        warnings.warn(LrtrackWarning(
            f"the SQLite store {path} is used by agents on other hosts too ({', '.join(sorted(hosts))}): {hint}"),
            stacklevel=3)


def _no_sqlite_store(path: Path) -> bool:
    """True when there is no SQLite store at ``path``: no file, or an empty one."""
    return not path.exists() or (path.is_file() and path.stat().st_size == 0)


def _no_store_message(shown: str) -> str:
    """The one line for a command that needs an existing store and found none at ``shown``."""
    return f"--store {shown}: no store there (create a sweep first with lrtrack sweep create)"


def _sqlite_open_existing(dialect, connection_record, cargs, cparams) -> None:
    """Open the SQLite file read-write but never create it (``mode=rw``), even if it vanished
    after `open_store` looked: a store that is not there stays not there."""
    if not str(cargs[0]).startswith("file:"):  # SQLAlchemy < 2.0.x reuses the same list for every connection
        cargs[0] = Path(cargs[0]).as_uri() + "?mode=rw"
    cparams["uri"] = True


def _sqlite_connect(dbapi_connection, connection_record) -> None:
    """Let SQLAlchemy's ``begin`` event issue BEGIN itself (pysqlite's own is deferred)."""
    dbapi_connection.isolation_level = None
    dbapi_connection.execute("PRAGMA foreign_keys=ON")
    # Write-ahead log: commits append instead of rewriting, so the many short
    # transactions of concurrent agents (claims, heartbeats, epochs) wait less.
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _begin_immediate(conn) -> None:
    """Every SQLite transaction takes the write lock up front: claims are never read-then-write."""
    conn.exec_driver_sql("BEGIN IMMEDIATE")


# ---------------------------------------------------------------- small helpers


def _sweep_record(row) -> SweepRecord:
    return SweepRecord(row.id, row.name, row.backend, row.state, row.spec, row.wandb_config, row.project,
                       row.entity, _datetime(row.created_at), row.max_attempts)


def _decode_all(texts: Iterable[str]) -> list[Any]:
    """Stored JSON texts decoded with one ``json.loads`` (per-value decoding was most of the
    time of reading a big sweep)."""
    texts = list(texts)
    try:
        values = json.loads("[" + ",".join(texts) + "]")
    except ValueError:
        raise StoreError(NOT_JSON) from None
    if len(values) != len(texts):  # a tampered text such as '1, 2' would shift every value after it
        raise StoreError(NOT_JSON)
    return values


def _epoch_order(history: list[Any], count: int) -> list[dict[str, Any]]:
    """One attempt's decoded rows (``count`` were stored) in epoch order: string aggregation keeps
    no order, and a row's ``epoch`` column is its metrics' ``epoch`` (`SqlStore.log_epoch`)."""
    try:
        if len(history) != count:  # a tampered text such as '{...}, {...}' would add a row
            raise ValueError
        return sorted(history, key=lambda row: int(row["epoch"]))
    except (KeyError, TypeError, ValueError):
        raise StoreError(NOT_JSON) from None


def _datetime(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, tz=timezone.utc)


def _driver_message(exc: BaseException | None) -> str:
    """The driver's first line, without SQLAlchemy's SQL echo and background link."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def _is_transient(exc: BaseException | None) -> bool:
    """True for a driver error that a retry can cure: a lost or refused connection (a database
    restarting), or SQLite's "database is locked" (another agent held the write lock longer than
    the deliberately short busy timeout, `SQLITE_BUSY_SECONDS`, so that a signal can land between
    tries). False for everything else."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        message = str(exc.orig).lower()
        return any(word in message for word in (
            "connection", "server closed", "terminating", "shutting down", "starting up", "database is locked"))
    return False
