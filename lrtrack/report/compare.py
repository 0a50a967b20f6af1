"""Measured vs published: each ``expected:`` entry of a sweep file next to its config's numbers."""

from __future__ import annotations

from dataclasses import dataclass

from lrtrack.config import ExpectedResult
from lrtrack.formatting import format_difference, format_metric
from lrtrack.report.study import ConfigResult, Study, config_label


@dataclass
class ComparisonLine:
    metric: str  #: "val/acc", or "val/acc e2" for one epoch of a per-epoch list
    published: float
    measured: float | None

    @property
    def difference(self) -> float | None:
        return None if self.measured is None else self.measured - self.published

    @property
    def quality(self) -> str:
        """``diff-pos`` when the measured value is better than published (higher accuracy, lower loss)."""
        if not self.difference:
            return ""
        higher_is_better = not self.metric.split(" ")[0].endswith("loss")
        return "diff-pos" if (self.difference > 0) == higher_is_better else "diff-neg"

    def text(self, which: str) -> str:
        """``published``, ``measured`` or ``difference``, as shown (`lrtrack.formatting`)."""
        key = self.metric.split(" ")[0]
        if which == "difference":
            return format_difference(key, self.difference)
        return format_metric(key, {"published": self.published, "measured": self.measured}[which])


@dataclass
class Comparison:
    expected: ExpectedResult
    row: ConfigResult | None
    lines: list[ComparisonLine]

    @property
    def label(self) -> str:
        return config_label(self.expected.config)


def compare_expected(study: Study) -> list[Comparison]:
    """Each ``expected:`` entry of the spec next to the measured numbers of its config."""
    comparisons = []
    for expected in study.expected:
        row = study.row_for(expected.config)
        lines = []
        for metric, published in expected.metrics.items():
            if isinstance(published, list):
                epochs, values = row.series(metric) if row else ([], [])
                measured = dict(zip(epochs, values))
                lines += [ComparisonLine(f"{metric} e{e}", p, measured.get(e)) for e, p in enumerate(published, start=1)]
            else:
                lines.append(ComparisonLine(metric, published, row.final(metric) if row else None))
        comparisons.append(Comparison(expected, row, lines))
    return comparisons
