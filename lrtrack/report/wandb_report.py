"""The report as a W&B Report (``wandb-workspaces``, reports v2): built, shown as JSON without a server, or saved."""

from __future__ import annotations

from typing import Any

from lrtrack.errors import LrtrackError, UserError
from lrtrack.metrics import TRAIN_LOSS, VAL_ACC
from lrtrack.report.compare import compare_expected
from lrtrack.report.study import Study
from lrtrack.report.tables import comparison_markdown, results_markdown, settings_items


def runset_filter(study: Study) -> str:
    """Local sweeps' runs carry ``group=<sweep id>`` (also after `lrtrack sync`); hosted sweeps' runs their sweep."""
    field_name = "Sweep" if study.backend == "wandb" else "Group"
    return f"Metric('{field_name}') == '{study.sweep_id}'"


def wandb_report(study: Study, entity: str, *, runset_project: bool):
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
        wr.LinePlot(title="Validation accuracy per epoch", x="epoch", y=[VAL_ACC], groupby=line_group,
                    layout=wr.Layout(x=0, y=0, w=12, h=8)),
        wr.LinePlot(title="Training loss per epoch", x="epoch", y=[TRAIN_LOSS], groupby=line_group,
                    layout=wr.Layout(x=12, y=0, w=12, h=8)),
    ]
    if study.lr_varies:
        panels.append(wr.LinePlot(title="Learning rate per epoch", x="epoch", y=["lr"], groupby=line_group,
                                  log_y=True, layout=wr.Layout(x=0, y=8, w=12, h=8)))
    columns = [wr.ParallelCoordinatesPlotColumn(metric=wr.Config(key)) for key in study.swept]
    columns += [wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric(m)) for m in (TRAIN_LOSS, VAL_ACC)]
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


def _about_markdown(study: Study) -> str:
    settings = ", ".join(f"`{name}: {text}`" for name, text in settings_items(study))
    return (f"{study.description}\n\nSweep `{study.sweep_id}` ({study.backend} backend, {study.method} search, "
            f"metric {study.metric.name} {study.metric.goal}). Settings: {settings}.")


def wandb_report_json(study: Study) -> dict[str, Any]:
    """What `save_wandb_report` would send — title, project and the blocks' spec — built without any server."""
    report = wandb_report(study, study.entity or "", runset_project=False)
    # wandb-workspaces has no public way to see a report without saving it (its public methods
    # save, delete, share, or embed a saved report): `_to_model` is the conversion `Report.save`
    # uploads. tests/test_report.py's dry-run test fails if a wandb-workspaces release changes it.
    model = report._to_model()
    return {
        "entity": study.entity,
        "project": study.project,
        "title": report.title,
        "description": report.description,
        "spec": model.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def save_wandb_report(study: Study) -> str:
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
