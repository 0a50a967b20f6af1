"""Every state a sweep, a run or an attempt can be in: one `State` enum that every module uses.

A ``StrEnum``: each member equals its string (``State.FINISHED == "finished"``), which is
what the store's columns, ``--json`` output, W&B summaries and the dashboard hold.

- A **sweep** is `SWEEP_STATES`: ``running`` until its runs are done (``finished``),
  or ``paused`` / ``cancelled`` by the user.
- A **run** (one config) is ``pending`` until claimed, ``running``, then ends in one
  of `RUN_ENDS`; a run whose attempt failed, crashed or was interrupted may go back to
  ``pending`` (`RETRYABLE`).
- An **attempt** (one try at a run, by one agent) is ``running``, then ends in one of
  `ATTEMPT_ENDS`: the run's ends plus ``interrupted`` (a stop signal), ``crashed`` (its
  agent went silent past the grace period) and ``superseded`` (finished after its run
  was handed to another agent).
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    PENDING = "pending"  #: a run waiting for an agent
    RUNNING = "running"  #: a sweep open for claims; a run or attempt training
    PAUSED = "paused"  #: a sweep whose agents claim nothing until it is resumed
    FINISHED = "finished"  #: trained every epoch (a sweep: nothing left to run)
    DIVERGED = "diverged"  #: the loss became NaN or infinite: stopped, a result
    EARLY_STOPPED = "early-stopped"  #: stopped by the sweep's early_terminate (hyperband)
    INTERRUPTED = "interrupted"  #: an attempt stopped by a signal (Ctrl-C, SIGTERM, SLURM's USR1)
    FAILED = "failed"  #: an exception ended the attempt; a run whose attempts are used up
    CRASHED = "crashed"  #: an attempt whose agent went silent for the grace period
    SUPERSEDED = "superseded"  #: an attempt that finished after its run was handed to another agent
    CANCELLED = "cancelled"  #: stopped because the sweep was cancelled


#: The states of a sweep.
SWEEP_STATES = (State.RUNNING, State.PAUSED, State.FINISHED, State.CANCELLED)
#: Runs that completed with a result to compare (W&B runs of these exit 0).
SUCCESS = (State.FINISHED, State.DIVERGED, State.EARLY_STOPPED)
#: How a run can end.
RUN_ENDS = (*SUCCESS, State.FAILED, State.CANCELLED)
#: The states of a run, in the order tables count them.
RUN_STATES = (State.PENDING, State.RUNNING, *RUN_ENDS)
#: How an attempt can end.
ATTEMPT_ENDS = (*RUN_ENDS, State.INTERRUPTED, State.CRASHED, State.SUPERSEDED)
#: Attempt ends after which the run may be tried again (failures count toward max_attempts;
#: interrupted never does).
RETRYABLE = (State.CRASHED, State.FAILED, State.INTERRUPTED)
#: Attempt ends that count toward a sweep's max_attempts.
FAILURES = (State.FAILED, State.CRASHED)
