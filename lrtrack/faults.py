"""A test hook that makes a fault happen at a named point of an agent's work.

``LRTRACK_FAULT=POINT[@N]:ACTION[,...]`` makes the N-th time (default: every time)
the agent reaches POINT do ACTION: ``raise`` (a RuntimeError, as a broken model
or device would) or a signal name sent to the agent itself (``SIGTERM``,
``SIGINT``, ``SIGKILL``, ``SIGSTOP``...). ``tests/test_faults.py`` uses it to
put a fault exactly inside each window where one could lose or duplicate a run.
Unset (always, outside tests) it costs one dictionary lookup per point.

Points, in the order a run meets them:

- ``claim``: the claim is committed, the agent has not taken note of it yet
- ``wandb-init``: ``wandb.init`` returned, the logger does not hold the run yet
- ``epoch``: an epoch's row is stored (each member of a pack counts)
- ``checkpoint``: training ended, checkpoints and curves are about to be logged
- ``store-finish``: the attempt is about to be recorded in the store
- ``wandb-finish``: the store has recorded it, W&B's finish comes next
"""

from __future__ import annotations

import os
import signal
from collections import Counter

POINTS = ("claim", "wandb-init", "epoch", "checkpoint", "store-finish", "wandb-finish")

_hits: Counter = Counter()


def fault_point(name: str) -> None:
    """Do what ``$LRTRACK_FAULT`` asks at point ``name`` (nothing when it is unset)."""
    spec = os.environ.get("LRTRACK_FAULT")
    if not spec:
        return
    _hits[name] += 1
    for item in spec.split(","):
        where, _, action = item.strip().partition(":")
        point, _, nth = where.partition("@")
        if point != name or (nth and int(nth) != _hits[name]):
            continue
        if action == "raise":
            raise RuntimeError(f"injected fault at {name}")
        os.kill(os.getpid(), getattr(signal, action))
