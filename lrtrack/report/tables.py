"""The report's tables, shared by the HTML page, the Markdown of the terminal and W&B, and the dashboard."""

from __future__ import annotations

from typing import Any

from lrtrack.formatting import MISSING, format_metric, format_value
from lrtrack.metrics import BEST_EPOCH, BEST_VAL_ACC, PERF_RUN_SECONDS, TEST_ACC, TRAIN_ACC, TRAIN_LOSS, VAL_ACC
from lrtrack.report.compare import Comparison
from lrtrack.report.study import ConfigResult, Study, config_label


def results_columns(study: Study) -> list[tuple[str, str]]:
    """``(header, key)`` of the results table after the swept values; keys are as logged."""
    columns = [("epochs", "epochs_run"), ("train acc", TRAIN_ACC), ("val acc", VAL_ACC)]
    if study.has_test:
        columns.append(("test acc", TEST_ACC))
    columns += [("train loss", TRAIN_LOSS), ("best val acc", BEST_VAL_ACC), ("best epoch", BEST_EPOCH),
                ("time", PERF_RUN_SECONDS), ("state", "state")]
    return columns


def cell(row: ConfigResult, key: str) -> tuple[str, Any]:
    """``(text shown, raw value)`` of one results-table cell."""
    if key == "state":
        return row.state, row.state
    if key == "epochs_run":
        return str(row.epochs_run), row.epochs_run
    if key == BEST_EPOCH:
        return (str(row.best_epoch) if row.best_epoch is not None else MISSING), row.best_epoch
    value = row.final(key)
    if key == PERF_RUN_SECONDS and value is not None:
        return f"{value:.1f} s", value
    return format_metric(key, value), value


def results_markdown(study: Study) -> str:
    """The results table and verdicts as Markdown (the W&B report and the terminal show this)."""
    columns = results_columns(study)
    header = [*study.swept, *(h for h, _ in columns), "verdict"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in study.rows:
        swept = [format_value(row.config[k]) for k in study.swept]
        cells = [cell(row, key)[0] for _, key in columns]
        verdict = f"**{row.verdict.label}**" if row.verdict else ""
        lines.append("| " + " | ".join([*swept, *cells, verdict]) + " |")
    lines.append("")
    lines += [f"- **{row.label}: {row.verdict.label}** — {row.verdict.reason}" for row in study.rows if row.verdict]
    if study.missing:
        lines += ["", f"Grid points that never ran ({len(study.missing)}): "
                  + ", ".join(config_label(point) for point in study.missing)]
    return "\n".join(lines)


def comparison_markdown(comparisons: list[Comparison]) -> str:
    lines = ["| config | metric | published | measured | difference |", "|---|---|---|---|---|"]
    for comparison in comparisons:
        for line in comparison.lines:
            lines.append(f"| {comparison.label} | {line.metric} | {line.text('published')} | "
                         f"{line.text('measured')} | {line.text('difference')} |")
    for comparison in comparisons:
        if comparison.expected.verdict or comparison.expected.note:
            ours = comparison.row.verdict.label if comparison.row and comparison.row.verdict else "not run"
            published = comparison.expected.verdict or ""
            lines.append(f"\n- {comparison.label}: published *{published}* {comparison.expected.note}".rstrip()
                         + f"; measured *{ours}*")
    return "\n".join(lines)


def settings_items(study: Study) -> list[tuple[str, str]]:
    """The fixed settings, then each parameter's values, as ``(name, text)``."""
    return [(key, format_value(value)) for key, value in study.fixed.items()] + _parameter_items(study.parameters)


def _parameter_items(parameters: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``(name, text)`` per parameter; W&B's nested syntax (``model_args: {parameters: ...}``)
    gives one item per nested parameter, named flat (``model_args.width``)."""
    items = []
    for key, body in parameters.items():
        name = prefix + key
        if not isinstance(body, dict):
            continue
        if isinstance(body.get("parameters"), dict):
            items += _parameter_items(body["parameters"], prefix=f"{name}.")
        elif "value" in body:
            items.append((name, format_value(body["value"])))
        elif "values" in body:
            items.append((name, "swept: " + ", ".join(format_value(v) for v in body["values"])))
        else:
            items.append((name, "swept: " + ", ".join(f"{k} {v}" for k, v in body.items())))
    return items
