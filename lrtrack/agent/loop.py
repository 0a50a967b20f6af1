"""The agent loop: claim a run, train it with the shared training function, record it, repeat.

One `Agent` is one worker process. For a local sweep it loops on
``store.claim_run`` (one transaction: exactly-once claims across processes and
machines), trains the claimed config with `lrtrack.train.run`, logging to an
offline or online W&B run, and records every epoch in the store. A background
`Heartbeat` keeps the attempt alive by the database clock; an attempt whose
agent died is requeued by whichever agent claims next after the grace period.

When things go wrong
--------------------
Every claimed attempt is recorded exactly once: the agent keeps the attempts it
claimed but has not recorded in ``_open`` (and the claim tokens of a claim in
progress in ``_claiming``) and, whatever stops it (a signal, an exception), records
each of them before it exits: ``interrupted`` (requeued, not a failure) after
a stop signal (`lrtrack.agent.signals`), ``failed`` with a one-line error after an
exception. Recording an attempt (store first, then W&B's finish with the matching exit
code) runs with signals deferred, so a signal cannot split it; W&B's file is then
checked for its exit record (a full disk leaves it cut short, silently), and an
incomplete one is noted on the attempt (`lrtrack.wandb_files.INCOMPLETE`). An exception
that is not lrtrack's own (the model, the data, the device) fails only its
attempt; `IDENTICAL_FAILURES` in a row with the same error stop the agent.
Under SLURM (`lrtrack.slurm`) the worker is named after the job and array task, and
only rank 0 of a task claims runs.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from lrtrack.agent import signals
from lrtrack.agent.settings import AgentSettings
from lrtrack.errors import LrtrackError, StoreError, UserError
from lrtrack.faults import fault_point
from lrtrack.metrics import VAL_ACC
from lrtrack.reporting import Reporter
from lrtrack.states import State
from lrtrack.store import new_id
from lrtrack.sweep import propose, run_label, should_stop, spec_of, train_config

if TYPE_CHECKING:
    from lrtrack.store import AttemptRecord, RunRecord, Store

#: Why an agent stopped, as printed when it exits 0.
DONE_MESSAGES = {
    "exhausted": "the search space is exhausted and no run is in flight",
    State.FINISHED: "the sweep is finished",
    "run_cap": "the sweep's run_cap is reached",
    State.PAUSED: "the sweep is paused (lrtrack sweep resume {sweep_id} to continue)",
    State.CANCELLED: "the sweep is cancelled",
    "count": "--count runs done",
    "rank": "not rank 0 of its task: only rank 0 claims runs",
}

#: Runs failing in a row with the same error after which an agent stops (exit 1): a
#: broken model or device would otherwise fail every run of the grid.
IDENTICAL_FAILURES = 3
#: How long (seconds) an exiting agent keeps retrying the store to release its attempts.
RELEASE_SECONDS = 10.0
#: Tries of one epoch's store write (backoff 0.5, 1, 2 s between them) before the run is given up.
EPOCH_WRITE_TRIES = 4


@dataclass
class AgentOutcome:
    reason: str
    runs: int

    sweep_id: str = ""

    @property
    def message(self) -> str:
        return DONE_MESSAGES.get(self.reason, self.reason).format(sweep_id=self.sweep_id)


class Heartbeat:
    """A daemon thread that heartbeats an attempt and notices stop requests."""

    def __init__(self, store: Store, attempt_id: int, interval: float) -> None:
        self.store, self.attempt_id, self.interval = store, attempt_id, interval
        self.stop_reason: str | None = None  #: ``cancelled`` or ``superseded`` once the store says stop
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lrtrack-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._done.set()
        self._thread.join(timeout=self.interval + 5)

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            try:
                self.stop_reason = self.store.heartbeat(self.attempt_id) or self.stop_reason
            except StoreError:
                pass  # the database may be restarting: try again next beat


@dataclass
class ClaimedAttempt:
    """One claimed attempt, ready to train: its run, config, W&B logger and heartbeat."""

    run: RunRecord
    attempt: AttemptRecord
    config: Any = None
    logger: Any = None
    label: str = ""
    heartbeat: Heartbeat | None = None
    unstored: list[dict[str, Any]] = field(default_factory=list)  #: epoch rows whose store write failed


class Agent:
    """One worker pulling runs of one sweep until it has nothing left to do.

    With ``pack`` > 1 it claims up to that many runs at a time and trains those
    that share a `lrtrack.pack.pack_key` together in one process.
    """

    def __init__(self, store: Store, sweep_id: str, settings: AgentSettings | None = None,
                 report: Reporter | Callable[[str], None] | None = None, pack: int = 1) -> None:
        self.store = store
        store.between_tries = signals.raise_if_stopping  # a stop signal does not wait for a locked store
        self.sweep = store.get_sweep(sweep_id)
        self.spec = spec_of(self.sweep)  # validated once, not per run
        self.settings = settings or AgentSettings()
        self.worker = default_worker_name()  #: how the store names this agent's attempts
        self.report = Reporter.wrap(report)  # every line the agent prints goes through it
        self.pack = pack
        self.next_config = propose(self.sweep.wandb_config)
        self._open: dict[int, ClaimedAttempt] = {}  #: claimed attempts not recorded yet, by attempt id
        self._claiming: list[str] = []  #: claim tokens of a claim that may have committed unseen
        self._failures: tuple[str | None, int] = (None, 0)  #: the last error and how many runs in a row had it
        #: Attempts a stopping agent could not record (the store did not answer within `RELEASE_SECONDS`).
        self.unrecorded: list[int] = []

    def run(self) -> AgentOutcome:
        """Claim and train runs until the sweep is done, ``count`` is reached, or a signal.

        Whatever ends it, every attempt it claimed is recorded once (see the module docstring).
        """
        from lrtrack.slurm import claiming_rank

        if rank := claiming_rank():
            self.report(f"[{self.worker}] {rank}: only rank 0 of a task claims runs")
            return AgentOutcome("rank", 0)
        if self.sweep.backend == "wandb":
            return self._run_wandb()
        preflight(self.spec)
        try:
            return self._loop()
        except BaseException as exc:
            self._release(exc)
            raise

    def _loop(self) -> AgentOutcome:
        done, waiting = 0, False
        while self.settings.count is None or done < self.settings.count:
            signals.check_stop()
            limit = self.pack if self.settings.count is None else min(self.pack, self.settings.count - done)
            claims, reason = self._claim(limit)
            if not claims:
                if reason != "wait":
                    return AgentOutcome(reason, done, self.sweep.id)
                if not waiting:
                    self.report("waiting for runs in flight on other agents")
                waiting = True
                time.sleep(self.settings.poll_seconds)
                continue
            waiting = False
            for group in self._groups(claims):
                self._train_group(group)
            done += len(claims)
        signals.check_stop()  # a stop signal held to the end of the last run still ends the agent with its code
        return AgentOutcome("count", done, self.sweep.id)

    def _groups(self, claims: list[ClaimedAttempt]) -> list[list[ClaimedAttempt]]:
        """Claims split into groups that can train together (same model, data, batch size...)."""
        if len(claims) == 1:
            return [claims]
        from lrtrack.pack import pack_key

        groups: dict[Any, list] = {}
        for member in claims:
            try:
                key = pack_key(train_config(self.spec, member.run))
            except UserError:
                key = ("invalid", member.run.id)
            groups.setdefault(key, []).append(member)
        return list(groups.values())

    def _claim(self, limit: int) -> tuple[list[ClaimedAttempt], str | None]:
        """Up to ``limit`` claimed attempts, and the reason claiming stopped.

        Each claim carries a fresh W&B run id as its token (`Store.claim_run`): stored in
        the claim's own transaction, and the key `_release` finds a claim by when a
        signal lands before the agent took note of it.
        """
        claims: list[ClaimedAttempt] = []
        while len(claims) < limit:
            token = new_id()
            self._claiming.append(token)
            claim = self.store.claim_run(self.sweep.id, self.worker, self.next_config,
                                         grace_seconds=self.settings.grace_seconds, wandb_run_id=token)
            fault_point("claim")
            if claim.run is not None:
                member = ClaimedAttempt(claim.run, claim.attempt)
                self._open[claim.attempt.id] = member
                claims.append(member)
            self._claiming.remove(token)
            if claim.run is None:
                return claims, claim.reason
        return claims, None

    def _prepare(self, member: ClaimedAttempt) -> bool:
        """Config and W&B logger of a claimed attempt; False (attempt failed) if the config is invalid."""
        from lrtrack.tracking import WandbLogger

        run, attempt = member.run, member.attempt
        try:
            member.config = train_config(self.spec, run)
        except UserError as exc:
            self._record(member, State.FAILED, {"state": State.FAILED, "error": "; ".join(exc.problems)})
            return False
        from lrtrack.slurm import SlurmTask

        task = SlurmTask.from_env()
        member.label = run_label(self.spec, member.config)
        member.logger = WandbLogger(
            self.sweep.project, self.sweep.entity,
            mode="offline" if self.settings.offline else None,
            name=member.label, group=self.sweep.id, run_id=attempt.wandb_run_id,
            tags=[self.sweep.name, "lrtrack", f"attempt-{attempt.number}", *(task.tags if task else [])],
            extra_config={"sweep_id": self.sweep.id, "run_number": run.number, "attempt": attempt.number,
                          **(task.wandb_config if task else {})},
            verbose=self.settings.verbose,
            # the store records the attempt first, then W&B's run is finished (see `_record`)
            before_finish=lambda summary: self._record(member, summary["state"], summary),
        )
        self.report.run_started(_run_name(run, attempt), member.label, member.config.epochs, member.logger.describe())
        return True

    def _train_group(self, claims: list[ClaimedAttempt]) -> None:
        """Train claimed attempts (alone, or packed together); each is recorded as it ends."""
        from lrtrack.train import run as train_run

        members = [member for member in claims if self._prepare(member)]
        if not members:
            return
        with contextlib.ExitStack() as stack:
            for member in members:
                member.heartbeat = stack.enter_context(
                    Heartbeat(self.store, member.attempt.id, self.settings.heartbeat_seconds))
            hooks = [self._epoch_hook(member) for member in members]
            with signals.training():
                try:
                    if len(members) == 1:
                        train_run(members[0].config, members[0].logger, on_epoch=hooks[0])
                    else:
                        from lrtrack.pack import run_packed

                        run_packed([m.config for m in members], [m.logger for m in members], hooks)
                except (KeyboardInterrupt, StoreError):
                    raise  # `run` releases what is still open
                except Exception as exc:  # the model, the data, the device, lrtrack's own checks
                    if (signum := signals.received()) is not None:
                        # Stopped on purpose, but the signal also reached W&B's service process (SLURM
                        # signals every process of a job), so logging failed: `run` requeues it all the same.
                        raise signals.stop_exception(signum) from None
                    self._failed(members, exc)
                    return
        self._failures = (None, 0)

    def _failed(self, members: list[ClaimedAttempt], exc: Exception) -> None:
        """An exception ended training: members not recorded yet fail with its one-line error
        (traceback saved with the run); the same error `IDENTICAL_FAILURES` times in a row stops the agent."""
        from lrtrack.train import describe_error, save_traceback

        error = describe_error(exc)
        traceback_file = None
        for member in members:
            if member.attempt.id in self._open:
                where = member.logger.files_dir if member.logger is not None and member.logger.run is not None \
                    else _traceback_dir() / member.attempt.wandb_run_id
                traceback_file = save_traceback(exc, where)
                self._record(member, State.FAILED, {"state": State.FAILED, "error": error,
                                                "traceback": str(traceback_file)})
        last, count = self._failures
        count = count + 1 if error == last else 1
        self._failures = (error, count)
        if count >= IDENTICAL_FAILURES:
            raise LrtrackError(f"{count} runs in a row failed with the same error, stopping: {error}")

    def _record(self, member: ClaimedAttempt, state: str, summary: dict[str, Any]) -> None:
        """Record how the attempt ended, once: the store first, then W&B's finish (exit code
        0 only for a run that completed); no signal can land between the two."""
        if member.attempt.id not in self._open:
            return
        stopping = signals.received() is not None
        if stopping:  # the agent is exiting: a store that does not answer is not waited for long
            self.store.retry_seconds = min(self.store.retry_seconds, RELEASE_SECONDS)
        with signals.signals_deferred(raise_after=False):
            fault_point("store-finish")
            try:
                final, run_state = self.store.finish_attempt(member.attempt.id, state, summary,
                                                             history=member.unstored or None)
            except StoreError as exc:
                if not stopping:
                    raise
                self._open.pop(member.attempt.id, None)
                self.unrecorded.append(member.attempt.id)
                if member.logger is not None:
                    member.logger.close({**summary, "state": state})
                self.report(f"{_run_name(member.run, member.attempt)}: not recorded ({exc}); "
                            "it is requeued as crashed after the grace period")
                return
            self._open.pop(member.attempt.id, None)
            fault_point("wandb-finish")
            if member.logger is not None:
                member.logger.close({**summary, "state": final})
                self._check_wandb_file(member)
        metric = self.sweep.wandb_config.get("metric", {}).get("name", VAL_ACC)
        value = summary.get(metric)
        error = f" ({summary['error']})" if final == State.FAILED and summary.get("error") else ""
        requeue = " (requeued)" if run_state == State.PENDING else ""
        self.report.run_ended(_run_name(member.run, member.attempt), final + error + requeue, metric, value,
                              getattr(member.logger, "folder", None))
        if not stopping:
            signals.check_stop()  # a signal that arrived while recording: stop now, the attempt is safe

    def _check_wandb_file(self, member: ClaimedAttempt) -> None:
        """After W&B's finish: a run whose ``.wandb`` file has no exit record (W&B could not write
        it all: disk full, a file size limit; W&B itself says nothing) gets why added to its
        attempt's summary (`lrtrack.wandb_files.INCOMPLETE`) and one warning line. About 0.05 s
        (W&B's own reader, `lrtrack.wandb_files.read_exit`)."""
        from lrtrack.wandb_files import INCOMPLETE, read_exit

        folder = getattr(member.logger, "folder", None)
        if folder is None or member.logger.mode == "disabled" or (problem := read_exit(folder)[1]) is None:
            return
        self.store.add_to_summary(member.attempt.id, {INCOMPLETE: problem})
        self.report(f"{_run_name(member.run, member.attempt)}: warning: W&B run {member.attempt.wandb_run_id} "
                    f"incomplete: {problem}")

    def _release(self, exc: BaseException) -> None:
        """The agent is stopping: record every attempt it still holds, once.

        After a signal: ``interrupted`` (requeued). After an error: ``failed`` with it.
        A store that is gone is not written (the attempts go stale and are requeued by the
        next agent that can reach it); W&B's runs are closed as failed either way.
        Bounded: the store is retried for `RELEASE_SECONDS` at most.
        """
        from lrtrack.train import describe_error

        interrupted = isinstance(exc, KeyboardInterrupt)
        state = State.INTERRUPTED if interrupted else State.FAILED
        summary = {"state": state} if interrupted else {"state": state, "error": describe_error(exc)}
        with signals.signals_deferred(raise_after=False):
            self.store.retry_seconds = min(self.store.retry_seconds, RELEASE_SECONDS)
            try:
                for token in list(self._claiming):
                    found = self.store.find_claim(token)
                    if found is not None and found[0] not in self._open:
                        self.store.finish_attempt(found[0], state, summary)
                        self.report(f"attempt {found[1]} (W&B run {token}): {state}, claimed as the agent stopped")
                    self._claiming.remove(token)
                for member in list(self._open.values()):
                    self._record(member, state, summary)
            except StoreError:
                for member in self._open.values():
                    if member.logger is not None:
                        member.logger.close({**summary, "state": state})

    def _epoch_hook(self, member: ClaimedAttempt):
        """After each epoch: store the row, then stop if asked to or if hyperband says so."""
        early_terminate = bool(self.sweep.wandb_config.get("early_terminate"))

        def hook(metrics: dict[str, Any]) -> str | None:
            self._store_epoch(member, metrics)
            self.report.epoch(_run_name(member.run, member.attempt), metrics, member.config.epochs)
            fault_point("epoch")
            signals.check_stop()
            if member.heartbeat is not None and (reason := member.heartbeat.stop_reason):
                self.report(f"run {member.run.number}: stopping after epoch {metrics['epoch']} ({reason})")
                return reason
            if early_terminate and should_stop(
                self.sweep.wandb_config, self.store.runs(self.sweep.id), member.run.id
            ):
                self.report(f"run {member.run.number}: stopped early by hyperband after epoch {metrics['epoch']}")
                return State.EARLY_STOPPED
            return None

        return hook

    def _store_epoch(self, member: ClaimedAttempt, metrics: dict[str, Any]) -> None:
        """Store one epoch's row, retrying with backoff; rows that could not be written are
        kept and written with the attempt's finish. A store that is gone stops at once."""
        from lrtrack.errors import StoreGoneError

        member.unstored.append(metrics)
        delay = 0.5
        for attempt in range(EPOCH_WRITE_TRIES):
            try:
                for row in list(member.unstored):
                    self.store.log_epoch(member.attempt.id, row)
                    member.unstored.remove(row)
                return
            except StoreGoneError:
                raise
            except StoreError:
                if attempt == EPOCH_WRITE_TRIES - 1:
                    raise
                time.sleep(delay)
                delay *= 2

    def _run_wandb(self) -> AgentOutcome:
        """W&B's hosted controller hands out configs; the training function is the same."""
        import wandb

        from lrtrack.config import make_train_config
        from lrtrack.tracking import WandbLogger
        from lrtrack.train import run as train_run

        runs = 0

        def train_from_wandb_config() -> None:
            nonlocal runs
            run = wandb.init()
            config = make_train_config(dict(run.config), source=f"W&B sweep {self.sweep.id}")
            train_run(config, WandbLogger.attach(run))
            runs += 1

        wandb.agent(self.sweep.id, function=train_from_wandb_config, project=self.sweep.project,
                    entity=self.sweep.entity, count=self.settings.count)
        return AgentOutcome(State.FINISHED if self.settings.count is None else "count", runs, self.sweep.id)


def _run_name(run: RunRecord, attempt: AttemptRecord) -> str:
    """How progress lines name an attempt: ``run 3 attempt 1``."""
    return f"run {run.number} attempt {attempt.number}"


def preflight(spec: Any) -> None:
    """Before the first claim: can this agent run the sweep at all? `UserError` (exit 2) if the
    device it asks for does not exist here, or W&B's directory cannot be written."""
    import tempfile

    from lrtrack.tracking import resolve_wandb_mode
    from lrtrack.wandb_files import wandb_root

    devices = {spec.fixed.get("device", "auto")}
    devices |= {str(v) for v in spec.parameters.get("device", {}).get("values", [])}
    for name in sorted(devices - {"auto", "cpu"}):
        problem = device_problem(name)
        if problem:
            raise UserError(f"device {name!r}: {problem}")
    if resolve_wandb_mode() == "disabled":
        return
    root = wandb_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".lrtrack-write-test-"):
            pass
    except OSError as exc:
        raise UserError(f"WANDB_DIR {root.parent}: W&B cannot write there ({exc.strerror or exc})") from None


def device_problem(name: str) -> str | None:
    """Why device ``name`` cannot be used on this machine, or None."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError as exc:
        return str(exc).splitlines()[0]
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return "no CUDA device is available on this machine"
        if device.index is not None and device.index >= torch.cuda.device_count():
            return f"only {torch.cuda.device_count()} CUDA device(s) visible"
    if device.type == "mps" and not torch.backends.mps.is_available():
        return "MPS is not available on this machine"
    return None


def _traceback_dir():
    """Where the traceback of an attempt that failed before its W&B run started is saved."""
    from lrtrack.wandb_files import wandb_root

    return wandb_root() / "lrtrack-tracebacks"


def default_worker_name() -> str:
    """``host:pid``, plus the SLURM task (``slurm-<array job>_<task>[-restartN]``) and the
    supervisor's slot name (e.g. ``gpu0.0``) when there are."""
    from lrtrack.slurm import SlurmTask

    parts = [socket.gethostname(), str(os.getpid())]
    if task := SlurmTask.from_env():
        parts.append(task.worker_suffix)
    if slot := os.environ.get("LRTRACK_WORKER"):
        parts.append(slot)
    return ":".join(parts)


