"""How values are shown, everywhere: terminal tables and progress lines, reports, the dashboard.

- `format_value`: a setting (``0.001``, ``adam``): labels, config columns, chart ticks.
- `format_metric`: a logged metric by its key: accuracies in percent, losses with 4
  decimals, ``lr`` and timings with 3 significant digits; non-finite values as Python
  writes them (``nan``, ``inf``); a missing value as `MISSING`.
- `format_difference`: measured minus published: accuracy in points, else 4 decimals.
"""

from __future__ import annotations

import math
from typing import Any

#: What a missing value shows as.
MISSING = "—"


def format_value(value: Any) -> str:
    """A setting as shown everywhere (labels, tables, chart ticks): ``0.001``, ``adam``."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def is_accuracy(key: str) -> bool:
    """``val/acc``, ``best/val_acc``...: shown in percent."""
    return key.endswith(("/acc", "_acc"))


def format_metric(key: str, value: Any) -> str:
    """A metric by its key: ``86.97%``, ``0.3712``, ``0.001``; `MISSING` when None."""
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return str(float(value))
    if is_accuracy(key):
        return f"{value:.2%}"
    if key == "lr" or key.startswith("perf/"):
        return f"{value:.3g}"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4f}"


def format_difference(key: str, difference: float | None) -> str:
    """Measured minus published: ``+0.31 pts`` for an accuracy, ``-0.0123`` otherwise."""
    if difference is None:
        return MISSING
    return f"{difference * 100:+.2f} pts" if is_accuracy(key) else f"{difference:+.4f}"
