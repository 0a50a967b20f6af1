"""Stop signals in an agent process: which ones stop it, when, and with which exit code.

SIGINT (Ctrl-C) stops at once. SIGTERM (preemption, ``scancel``, ``docker stop``,
Kubernetes) and SIGUSR1 (SLURM's warning before the time limit) let a training run
finish its current epoch first (`training`). A stop raises `KeyboardInterrupt` (SIGINT)
or `Terminated` (exit code 128 + the signal's number) in the main thread.

While an attempt is being recorded (`signals_deferred`) a signal is only remembered, so
it cannot split the store's record from W&B's; `check_stop` raises a remembered signal
at the agent's next safe point.
"""

from __future__ import annotations

import contextlib
import signal
import threading

class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGUSR1, raised in the main thread so a run stops cleanly (exit code 128 + signal)."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__()
        self.exit_code = 128 + int(signum)


#: Signals that let a training run finish its current epoch before it stops.
EPOCH_END_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
#: Stop signals received by this process since `raise_on_stop_signals`.
_stop_signals: list[int] = []
#: Nesting depth of `signals_deferred`: while above 0 a stop signal is only remembered.
_deferred = 0
#: Set while a run trains: an EPOCH_END_SIGNALS signal then waits for the epoch hook.
_training = threading.Event()
#: Stop exceptions already raised: a second signal must not break the requeue in progress.
_raised: list[int] = []



def raise_on_stop_signals() -> None:
    """Turn SIGTERM into `Terminated` and SIGINT into KeyboardInterrupt, and remember them.

    The exception raised by a signal handler is lost when it lands inside a
    finalizer (``__del__``, a weakref callback): Python prints it and goes on.
    `check_stop` raises it again at the agent's next safe point (after each
    epoch, before each claim), so a stop request is never lost.
    """

    def handler(signum, frame):
        _stop_signals.append(signum)
        if _deferred or _raised or (signum in EPOCH_END_SIGNALS and _training.is_set()):
            return  # recording an attempt, already stopping, or the epoch hook stops the run after this epoch
        _raised.append(signum)
        raise stop_exception(signum)

    for signum in (signal.SIGINT, *EPOCH_END_SIGNALS):
        signal.signal(signum, handler)


def check_stop() -> None:
    """Raise the stop exception of a signal already received (see `raise_on_stop_signals`)."""
    if _stop_signals:
        _raised.append(_stop_signals[-1])
        raise stop_exception(_stop_signals[-1])


def raise_if_stopping() -> None:
    """In the main thread, raise a stop signal received and not raised yet, unless an attempt is
    being recorded (`signals_deferred`). Run between a store's retries (``SqlStore.between_tries``):
    a SIGTERM held to the end of an epoch stops the agent even while the epoch's store write
    waits on a lock another process holds."""
    if _stop_signals and not _deferred and not _raised and threading.current_thread() is threading.main_thread():
        check_stop()


@contextlib.contextmanager
def signals_deferred(raise_after: bool = True):
    """A section no stop signal may split (recording an attempt in the store and W&B):
    a signal received inside it is raised when it ends (``raise_after``), or only
    remembered (an agent already stopping)."""
    global _deferred
    _deferred += 1
    try:
        yield
    finally:
        _deferred -= 1
    if raise_after and not _deferred:
        check_stop()



@contextlib.contextmanager
def training():
    """While a run trains: a SIGTERM/SIGUSR1 is remembered, and the epoch hook's `check_stop`
    stops the run at the end of the current epoch."""
    _training.set()
    try:
        yield
    finally:
        _training.clear()


def received() -> int | None:
    """The last stop signal received since `raise_on_stop_signals`, if any."""
    return _stop_signals[-1] if _stop_signals else None


def stop_exception(signum: int) -> KeyboardInterrupt:
    """The exception a stop signal raises: `KeyboardInterrupt` for SIGINT, else `Terminated`."""
    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def reset() -> None:
    """Forget the signals received (a process that goes on after handling them: tests)."""
    _stop_signals.clear()
    _raised.clear()
