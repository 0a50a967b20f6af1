"""Reports: a sweep as a learning-rate study — results table, curves, verdicts.

One data path, two renderers:

1. `load_study` reads a sweep into a `StudyData`: one `ConfigResult` per
   proposed config with its per-epoch history and final summary. Local sweeps
   are read from lrtrack's store (the last finished/diverged/early-stopped
   attempt of each run); ``wandb``-backend sweeps from W&B's public API.
2. `lrtrack.verdicts.judge` gives every config a `Verdict` computed from those
   numbers (diverged, near chance, best, within 1 point of best, too slow, too
   fast, unstable...), and `compare_expected` sets them against a published study's figures
   (``expected:`` in the sweep file).
3. `write_html` renders a self-contained page (Jinja2 template, matplotlib SVG
   charts from `lrtrack.charts`); `wandb_report` builds a W&B Report with
   ``wandb-workspaces`` (reports v2), `save_wandb_report` saves it and
   `wandb_report_json` shows what would be saved, without any server.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrtrack.config import ExpectedResult, Metric, TrainConfig, flat_settings
from lrtrack.errors import LrtrackError, UserError
from lrtrack.formatting import format_difference, format_metric, format_value, is_accuracy
from lrtrack.verdicts import COMPLETED, Verdict, judge, rules_text

if TYPE_CHECKING:
    from lrtrack.store import AttemptRecord, RunRecord, Store, SweepRecord



# ---------------------------------------------------------------- data model


@dataclass
class ConfigResult:
    """One proposed configuration and the attempt a report shows for it."""

    run: int  #: proposal number in the sweep (1, 2, ...)
    attempt: int | None  #: attempt number in the store (None for W&B sweeps)
    config: dict[str, Any]  #: the swept values, e.g. {"lr": 0.001}
    label: str  #: "lr=0.001"
    state: str
    history: list[dict[str, Any]]
    summary: dict[str, Any]
    wandb_run_id: str | None = None
    diverge_loss: float = TrainConfig.model_fields["diverge_loss"].default
    verdict: Verdict | None = None

    def final(self, key: str) -> float | None:
        """The final value of ``key``: the summary's, else the last epoch's."""
        value = self.summary.get(key)
        if value is None and self.history:
            value = self.history[-1].get(key)
        return _number(value)

    def series(self, key: str) -> tuple[list[int], list[float | None]]:
        rows = [row for row in self.history if key in row]
        return [row["epoch"] for row in rows], [_number(row[key]) for row in rows]

    @property
    def epochs_run(self) -> int:
        return int(self.summary.get("epochs_run") or len(self.history))

    @property
    def best_val_acc(self) -> float | None:
        return _number(self.summary.get("best/val_acc"))

    @property
    def best_epoch(self) -> int | None:
        value = self.summary.get("best/epoch")
        return int(value) if value is not None else None


@dataclass
class StudyData:
    """Everything a report renders, whichever backend the sweep ran on."""

    sweep_id: str
    name: str
    description: str
    backend: str
    state: str
    project: str
    entity: str | None
    method: str
    metric: Metric
    swept: list[str]  #: parameters with more than one value, in the spec's order; nested ones flat (`swept_axes`)
    parameters: dict[str, dict[str, Any]]
    fixed: dict[str, Any]
    num_classes: int | None  #: as the runs logged it (`logged_num_classes`); None when no run did
    created_at: datetime | None
    rows: list[ConfigResult]
    expected: list[ExpectedResult] = field(default_factory=list)
    range_test: dict[str, Any] | None = None  #: the `lrtrack lr-find` result the sweep was written from
    missing: list[dict[str, Any]] = field(default_factory=list)  #: grid points no run was made for

    @property
    def chance(self) -> float | None:
        """Chance accuracy, 1 / classes; None when no run logged its number of classes."""
        return 1.0 / self.num_classes if self.num_classes else None

    @property
    def has_test(self) -> bool:
        return any("test/acc" in row for result in self.rows for row in result.history)

    @property
    def lr_varies(self) -> bool:
        """A scheduler or warm-up is used, or the logged rate changes within some run."""
        schedules = [self.fixed.get("scheduler", "none"), *self.parameters.get("scheduler", {}).get("values", [])]
        if any(s != "none" for s in schedules) or self.fixed.get("warmup_epochs") or "warmup_epochs" in self.parameters:
            return True
        return any(len({v for v in r.series("lr")[1] if v is not None}) > 1 for r in self.rows)

    def matches(self, config: dict[str, Any], row: ConfigResult) -> bool:
        """``row``'s settings (fixed and swept) include every value of ``config`` (e.g. ``{"lr": 0.1}``)."""
        return config_matches(config, {**self.fixed, **row.config})

    def row_for(self, config: dict[str, Any]) -> ConfigResult | None:
        """The first measured configuration that `matches` ``config``."""
        return next((row for row in self.rows if self.matches(config, row)), None)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and value.lower() in ("nan", "inf", "-inf", "infinity", "-infinity"):
        return float(value)
    return None


def config_label(config: dict[str, Any]) -> str:
    """``lr=0.001 optimizer=adam``: the legend entry of one configuration."""
    return " ".join(f"{k}={format_value(v)}" for k, v in config.items())


# ---------------------------------------------------------------- loading


def load_study(store: Store, sweep_id: str) -> StudyData:
    """Read sweep ``sweep_id`` (store, or W&B's API for a ``wandb`` sweep) and judge every config."""
    from lrtrack.sweep import spec_of

    record = store.get_sweep(sweep_id)
    spec = spec_of(record)
    axes = swept_axes(spec)
    swept = list(axes)
    if record.backend == "wandb":
        rows = _rows_from_wandb(record, swept, spec.fixed)
    else:
        rows = [_row_from_store(run, swept, spec.fixed) for run in store.runs(sweep_id)]
    study = StudyData(
        sweep_id=record.id,
        name=spec.name,
        description=spec.description,
        backend=record.backend,
        state=record.state,
        project=record.project,
        entity=record.entity,
        method=spec.method,
        metric=spec.metric,
        swept=swept,
        parameters=spec.parameters,
        fixed=spec.fixed,
        num_classes=logged_num_classes(rows),
        created_at=record.created_at,
        rows=rows,
        expected=list(spec.expected),
        range_test=spec.range_test,
    )
    study.missing = _missing_grid_points(spec, axes, rows)
    judge(study)
    return study


def logged_num_classes(rows: list[ConfigResult]) -> int | None:
    """The number of classes the runs logged (``num_classes`` in their summaries, taken from the
    data by `lrtrack.train.run`); the most common one if runs differ, None when none logged it."""
    from collections import Counter

    logged = Counter(r.summary["num_classes"] for r in rows if isinstance(r.summary.get("num_classes"), int))
    return logged.most_common(1)[0][0] if logged else None


def swept_axes(spec) -> dict[str, list[Any] | None]:
    """The swept settings by their flat names, each with its listed values (None for a
    distribution): ``lr``, and for W&B's nested syntax one axis per nested parameter with
    listed values, e.g. ``model_args.width`` (what tables, labels and charts show). A sweep
    with no swept setting shows its parameters."""
    names = spec.swept or list(spec.parameters)
    axes: dict[str, list[Any] | None] = {}
    for key in names:
        body = spec.parameters[key]
        nested = body.get("parameters")
        if isinstance(nested, dict):
            listed = {name: inner["values"] for name, inner in nested.items() if isinstance(inner, dict) and "values" in inner}
            for name, inner in (listed or nested).items():
                axes[f"{key}.{name}"] = inner if isinstance(inner, list) else ([inner["value"]] if "value" in inner else None)
        else:
            axes[key] = body["values"] if "values" in body else ([body["value"]] if "value" in body else None)
    return axes


def flat_config(config: dict[str, Any], swept: list[str]) -> dict[str, Any]:
    """A run's values of the (flat) swept settings: ``{"lr": 0.01, "model_args.width": 64}``."""
    flat = flat_settings(config)
    return {key: flat.get(key) for key in swept}


def _missing_grid_points(spec, axes: dict[str, list[Any] | None], rows: list[ConfigResult]) -> list[dict[str, Any]]:
    """The grid's points (swept values only) that no run of the sweep was made for."""
    import itertools

    if spec.method != "grid":
        return []
    points = [[(k, v) for v in (values if values is not None else [None])] for k, values in axes.items()]
    made = {tuple(format_value(row.config.get(k)) for k in axes) for row in rows}
    return [dict(point) for point in itertools.product(*points)
            if tuple(format_value(v) for _, v in point) not in made]


def shown_attempt(run: RunRecord) -> AttemptRecord | None:
    """The last attempt that ended on its own (finished, diverged, early-stopped), else the latest."""
    completed = [attempt for attempt in run.attempts if attempt.state in COMPLETED]
    return completed[-1] if completed else run.latest


def _diverge_loss(fixed: dict[str, Any], config: dict[str, Any]) -> float:
    value = {**fixed, **config}.get("diverge_loss")
    return float(value) if value is not None else TrainConfig.model_fields["diverge_loss"].default


def _row_from_store(run: RunRecord, swept: list[str], fixed: dict[str, Any]) -> ConfigResult:
    attempt = shown_attempt(run)
    config = flat_config(run.config, swept)
    return ConfigResult(
        run=run.number,
        attempt=attempt.number if attempt else None,
        config=config,
        label=config_label(config),
        state=attempt.state if attempt else run.state,
        history=list(attempt.history) if attempt else [],
        summary=dict(attempt.summary) if attempt else {},
        wandb_run_id=attempt.wandb_run_id if attempt else None,
        diverge_loss=_diverge_loss(fixed, run.config),
    )


def _rows_from_wandb(record: SweepRecord, swept: list[str], fixed: dict[str, Any]) -> list[ConfigResult]:
    """A hosted W&B sweep's runs through the public API (history as logged, one row per epoch)."""
    import wandb

    path = "/".join(part for part in (record.entity, record.project, record.id) if part)
    try:
        sweep = wandb.Api().sweep(path)
        runs = sorted(sweep.runs, key=lambda run: str(getattr(run, "created_at", "")))  # ISO strings: oldest first
        rows = []
        for number, run in enumerate(runs, start=1):
            history = [{k: v for k, v in row.items() if not k.startswith("_")} for row in run.scan_history()]
            history = [row for row in history if row.get("epoch") is not None]
            summary = {k: v for k, v in run.summary_metrics.items() if not k.startswith("_")}
            config = flat_config(dict(run.config), swept)
            rows.append(ConfigResult(
                run=number, attempt=None, config=config, label=config_label(config),
                state=str(summary.get("state") or run.state), history=history, summary=summary,
                wandb_run_id=run.id, diverge_loss=_diverge_loss(fixed, dict(run.config)),
            ))
    except (wandb.errors.CommError, ValueError) as exc:
        raise LrtrackError(f"W&B sweep {path}: cannot read its runs ({exc})") from None
    return rows


# ---------------------------------------------------------------- measured vs published


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


def compare_expected(study: StudyData) -> list[Comparison]:
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


def config_matches(wanted: dict[str, Any], config: dict[str, Any]) -> bool:
    """Every key of ``wanted`` has that value in ``config`` (numbers compared with a relative tolerance)."""
    for key, value in wanted.items():
        have = config.get(key)
        if isinstance(value, (int, float)) and isinstance(have, (int, float)):
            if not math.isclose(value, have, rel_tol=1e-9):
                return False
        elif have != value:
            return False
    return True


# ---------------------------------------------------------------- tables (shared by HTML and Markdown)


def results_columns(study: StudyData) -> list[tuple[str, str]]:
    """``(header, key)`` of the results table after the swept values; keys are as logged."""
    columns = [("epochs", "epochs_run"), ("train acc", "train/acc"), ("val acc", "val/acc")]
    if study.has_test:
        columns.append(("test acc", "test/acc"))
    columns += [("train loss", "train/loss"), ("best val acc", "best/val_acc"), ("best epoch", "best/epoch"),
                ("time", "perf/run_seconds"), ("state", "state")]
    return columns


def cell(row: ConfigResult, key: str) -> tuple[str, Any]:
    """``(text shown, raw value)`` of one results-table cell."""
    if key == "state":
        return row.state, row.state
    if key == "epochs_run":
        return str(row.epochs_run), row.epochs_run
    if key == "best/epoch":
        return (str(row.best_epoch) if row.best_epoch is not None else "—"), row.best_epoch
    value = row.final(key)
    if key == "perf/run_seconds" and value is not None:
        return f"{value:.1f} s", value
    return format_metric(key, value), value


def results_markdown(study: StudyData) -> str:
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


def settings_items(study: StudyData) -> list[tuple[str, str]]:
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


# ---------------------------------------------------------------- HTML


def charts(study: StudyData) -> list[dict[str, str]]:
    """The page's figures: ``{"id", "title", "svg"}`` each."""
    from lrtrack import charts as draw

    figures = [
        ("train-loss", "Training loss", draw.line_chart(
            "train-loss", [(r.label, *r.series("train/loss")) for r in study.rows],
            title="Training loss per epoch", ylabel="train loss")),
        ("val-acc", "Validation accuracy", draw.line_chart(
            "val-acc", [(r.label, *r.series("val/acc")) for r in study.rows],
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


def _range_test_chart(study: StudyData) -> tuple[str, str, str]:
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


def render_html(study: StudyData) -> str:
    """The whole report as one self-contained HTML page."""
    import jinja2

    from lrtrack import __version__

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("lrtrack", "."),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    template = env.get_template("report_template.html")
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


def write_html(study: StudyData, path: str | os.PathLike) -> Path:
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


# ---------------------------------------------------------------- W&B report


def runset_filter(study: StudyData) -> str:
    """Local sweeps' runs carry ``group=<sweep id>`` (also after `lrtrack sync`); hosted sweeps' runs their sweep."""
    field_name = "Sweep" if study.backend == "wandb" else "Group"
    return f"Metric('{field_name}') == '{study.sweep_id}'"


def wandb_report(study: StudyData, entity: str, *, runset_project: bool):
    """A W&B Report (``wandb_workspaces.reports.v2``) of the study.

    ``runset_project`` names the project on the run set; that makes
    wandb-workspaces look the project up on the server, so `wandb_report_json`
    leaves it out (the run set then reads the report's own project).
    """
    import wandb_workspaces.reports.v2 as wr

    groupby = [f"config.{key}" for key in study.swept]
    runset = wr.Runset(
        entity=entity if runset_project else "",
        project=study.project if runset_project else "",
        name=f"sweep {study.sweep_id}",
        filters=runset_filter(study),
        groupby=groupby,
    )
    line_group = groupby[0] if len(groupby) == 1 else None  # several swept keys: the run set's grouping
    panels = [
        wr.LinePlot(title="Validation accuracy per epoch", x="epoch", y=["val/acc"], groupby=line_group,
                    layout=wr.Layout(x=0, y=0, w=12, h=8)),
        wr.LinePlot(title="Training loss per epoch", x="epoch", y=["train/loss"], groupby=line_group,
                    layout=wr.Layout(x=12, y=0, w=12, h=8)),
    ]
    if study.lr_varies:
        panels.append(wr.LinePlot(title="Learning rate per epoch", x="epoch", y=["lr"], groupby=line_group,
                                  log_y=True, layout=wr.Layout(x=0, y=8, w=12, h=8)))
    columns = [wr.ParallelCoordinatesPlotColumn(metric=wr.Config(key)) for key in study.swept]
    columns += [wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric(m)) for m in ("train/loss", "val/acc")]
    panels += [
        wr.ParallelCoordinatesPlot(title=f"{', '.join(study.swept)} vs final metrics", columns=columns,
                                   layout=wr.Layout(x=12 if study.lr_varies else 0, y=8, w=12, h=8)),
        wr.RunComparer(diff_only="split", layout=wr.Layout(x=0, y=16, w=24, h=10)),
    ]
    blocks = [
        wr.MarkdownBlock(text=_about_markdown(study)),
        wr.H2(text="Curves"),
        wr.PanelGrid(runsets=[runset], panels=panels),
        wr.H2(text="Results and verdicts"),
        wr.MarkdownBlock(text=results_markdown(study)),
    ]
    comparisons = compare_expected(study)
    if comparisons:
        blocks += [wr.H2(text="Measured vs published"), wr.MarkdownBlock(text=comparison_markdown(comparisons))]
    return wr.Report(project=study.project, entity=entity, title=f"{study.name}: learning-rate study"[:128],
                     description=study.description, blocks=blocks)


def _about_markdown(study: StudyData) -> str:
    settings = ", ".join(f"`{name}: {text}`" for name, text in settings_items(study))
    return (f"{study.description}\n\nSweep `{study.sweep_id}` ({study.backend} backend, {study.method} search, "
            f"metric {study.metric.name} {study.metric.goal}). Settings: {settings}.")


def wandb_report_json(study: StudyData) -> dict[str, Any]:
    """What `save_wandb_report` would send — title, project and the blocks' spec — built without any server."""
    report = wandb_report(study, study.entity or "", runset_project=False)
    model = report._to_model()  # the same conversion Report.save() uploads
    return {
        "entity": study.entity,
        "project": study.project,
        "title": report.title,
        "description": report.description,
        "spec": model.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def save_wandb_report(study: StudyData) -> str:
    """Save the report to W&B (needs a login) and return its URL."""
    from lrtrack.tracking import resolve_wandb_mode

    if resolve_wandb_mode() != "online":
        raise UserError("--wandb: no W&B login (set WANDB_API_KEY or run `wandb login`, and unset WANDB_MODE=offline); "
                        "--dry-run prints the report without a server")
    import wandb

    entity = study.entity or wandb.Api().default_entity
    report = wandb_report(study, entity, runset_project=True)
    try:
        report.save()
    except Exception as exc:  # network, permissions, unknown project: one line, not a traceback
        raise LrtrackError(f"--wandb: saving the report to {entity}/{study.project} failed ({exc})") from None
    return report.url
