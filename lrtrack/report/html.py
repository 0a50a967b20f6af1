"""The report as one self-contained HTML page (Jinja2 template, matplotlib SVG charts from `lrtrack.charts`)."""

from __future__ import annotations

import math
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lrtrack.errors import UserError
from lrtrack.formatting import format_value, is_accuracy
from lrtrack.metrics import TRAIN_LOSS, VAL_ACC
from lrtrack.report.compare import compare_expected
from lrtrack.report.study import Study
from lrtrack.report.tables import cell, results_columns, settings_items
from lrtrack.verdicts import rules_text


def charts(study: Study) -> list[dict[str, str]]:
    """The page's figures: ``{"id", "title", "svg"}`` each."""
    from lrtrack import charts as draw

    figures = [
        ("train-loss", "Training loss", draw.line_chart(
            "train-loss", [(r.label, *r.series(TRAIN_LOSS)) for r in study.rows],
            title="Training loss per epoch", ylabel="train loss")),
        ("val-acc", "Validation accuracy", draw.line_chart(
            "val-acc", [(r.label, *r.series(VAL_ACC)) for r in study.rows],
            title="Validation accuracy per epoch", ylabel="val accuracy", percent=True,
            hline=(study.chance, f"chance {study.chance:.0%}") if study.chance is not None else None)),
    ]
    if study.lr_varies:
        figures.append(("lr", "Learning rate", draw.line_chart(
            "lr", [(r.label, *r.series("lr")) for r in study.rows],
            title="Learning rate per epoch (as used)", ylabel="learning rate", log_y=True)))
    if len(study.swept) >= 2:
        x_name, y_name = study.swept[:2]
        x_values = _distinct(r.config[x_name] for r in study.rows)
        y_values = _distinct(r.config[y_name] for r in study.rows)
        key = study.metric.name
        maximize = study.metric.goal == "maximize"
        cells: dict[tuple[Any, Any], float] = {}
        for r in study.rows:  # best over any further swept parameters
            value = r.final(key)
            if value is None or not math.isfinite(value):
                continue
            slot = (r.config[x_name], r.config[y_name])
            if slot not in cells or (value > cells[slot]) == maximize:
                cells[slot] = value
        rest = f", best over {', '.join(study.swept[2:])}" if len(study.swept) > 2 else ""
        figures.append(("heatmap", f"Final {key}", draw.heatmap(
            "heatmap", x_name, x_values, y_name, y_values, cells,
            title=f"Final {key} by {x_name} and {y_name}{rest}", percent=is_accuracy(key))))
    if study.range_test is not None:
        figures.append(_range_test_chart(study))
    return [{"id": chart_id, "title": title, "svg": svg} for chart_id, title, svg in figures]


def _range_test_chart(study: Study) -> tuple[str, str, str]:
    """The range test this sweep was written from (`lrtrack.lr_find.sweep_spec`), its suggestions
    marked against the learning rate of the configuration judged best."""
    from lrtrack.lr_find import chart_svg

    best = next((r for r in study.rows if r.verdict and r.verdict.label == "best"), None)
    won = ("best in sweep: lr", best.config["lr"]) if best is not None and "lr" in best.config else None
    return "lr-find", "LR range test the sweep was written from", chart_svg(study.range_test, won=won)


def _distinct(values) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    try:
        return sorted(seen)
    except TypeError:
        return seen


def render_html(study: Study) -> str:
    """The whole report as one self-contained HTML page."""
    import jinja2

    from lrtrack import __version__

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lrtrack", "report"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.get_template("template.html")
    return template.render(
        study=study,
        settings=settings_items(study),
        columns=results_columns(study),
        cell=cell,
        value_text=format_value,
        charts=charts(study),
        comparisons=compare_expected(study),
        rules=rules_text(),
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        version=__version__,
    )


def write_html(study: Study, path: str | os.PathLike) -> Path:
    """Render and write the page atomically: a temporary file next to ``path``, then a rename."""
    html = render_html(study)
    path = Path(path)
    try:
        handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent or ".", prefix=f".{path.name}.",
                                             suffix=".tmp", delete=False)
    except OSError as exc:
        raise UserError(f"--html: cannot write {path} ({exc.strerror or exc})") from None
    try:
        with handle:
            handle.write(html)
        os.chmod(handle.name, 0o666 & ~_umask())  # tempfile creates 0600; a report is an ordinary file
        os.replace(handle.name, path)
    except OSError as exc:
        Path(handle.name).unlink(missing_ok=True)
        raise UserError(f"--html: cannot write {path} ({exc.strerror or exc})") from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
