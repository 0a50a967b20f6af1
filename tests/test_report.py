"""Reports: a real 3-learning-rate sweep (digits, SGD, offline W&B runs, SQLite store)
rendered as HTML and opened in real headless Chromium, and as a W&B Report in dry-run.

One sweep is shared by the module (it is the expensive part); the verdict and
chart rules are also checked on hand-built histories, where each case is known.
"""

from __future__ import annotations

import json
import math
import struct
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from browser import chromium
from clitools import assert_one_line_error, lrtrack, offline_env, write_sweep_spec

from lrtrack.config import ExpectedResult, Metric
from lrtrack.report.compare import compare_expected
from lrtrack.report.html import render_html
from lrtrack.report.study import ConfigResult, Study, config_label
from lrtrack.verdicts import judge

# One worker runs this file (its module-scoped sweep is built once), and early (it is slow).
pytestmark = [pytest.mark.xdist_group("report"), pytest.mark.slow]

LRS = [0.01, 0.2, 20.0]  # digits + SGD: too slow, good, diverging (train loss > 100 in epoch 1)


# ---------------------------------------------------------------- the shared sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> SimpleNamespace:
    """`lrtrack sweep run` of a 3-lr grid, its `sweep show --json` and its HTML report."""
    root = tmp_path_factory.mktemp("report-sweep")
    (root / "wandb-dir").mkdir()
    env = offline_env(root / "wandb-dir")
    expected = [{"config": {"lr": 0.2}, "metrics": {"val/acc": 0.9, "train/loss": [1.5, 0.8, 0.4]}, "verdict": "best"}]
    spec = write_sweep_spec(root / "digits-lr.yaml", "digits-lr-study", {"lr": LRS},
                            more={"description": "Three SGD learning rates on digits.", "expected": expected},
                            model="fcn", optimizer="sgd", epochs=3, batch_size=32)
    store = f"sqlite:///{root}/store.db"
    proc = lrtrack("sweep", "run", str(spec), "--store", store, "--offline", env=env, cwd=root)
    assert proc.returncode == 0, proc.stderr
    sweep_id = proc.stdout.strip().splitlines()[-1]
    shown = lrtrack("sweep", "show", sweep_id, "--json", "--store", store, env=env, cwd=root)
    assert shown.returncode == 0, shown.stderr
    html = root / "report.html"
    made = lrtrack("report", sweep_id, "--html", str(html), "--store", store, env=env, cwd=root)
    assert made.returncode == 0, made.stderr
    return SimpleNamespace(id=sweep_id, store=store, root=root, env=env, html=html,
                           description=json.loads(shown.stdout))


def entry_for(description: dict, lr: float) -> dict:
    (entry,) = [e for e in description["runs"] if e["config"]["lr"] == lr and e["state"] != "crashed"]
    return entry


# ---------------------------------------------------------------- real Chromium


@pytest.fixture(scope="module")
def page(sweep):
    """The report loaded in headless Chromium through chromedriver (selenium), console logs on."""
    with chromium() as driver:
        driver.get(sweep.html.as_uri())
        yield driver


@pytest.mark.chromium
def test_report_renders_in_chromium_with_two_curve_charts_of_three_lines(page, sweep):
    from selenium.webdriver.common.by import By

    png = page.get_screenshot_as_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 1000 and height >= 800
    (sweep.root / "report.png").write_bytes(png)

    assert "digits-lr-study" in page.title
    for chart in ("train-loss", "val-acc"):
        figure = page.find_element(By.ID, f"chart-{chart}")
        lines = figure.find_elements(By.CSS_SELECTOR, f"g[id^='{chart}-line-']")
        assert len(lines) == 3, chart
        points = sorted(len(line.find_elements(By.TAG_NAME, "use")) for line in lines)  # one marker per epoch
        assert points == sorted(e["metrics"]["epochs_run"] for e in sweep.description["runs"])
        assert figure.find_element(By.TAG_NAME, "svg").size["height"] > 150
        legend = figure.text + page.execute_script("return arguments[0].textContent", figure)
        for lr in LRS:
            assert config_label({"lr": lr}) in legend
    # a constant rate and one swept parameter: neither a learning-rate chart nor a heatmap
    assert not page.find_elements(By.ID, "chart-lr") and not page.find_elements(By.ID, "chart-heatmap")
    # no network asset anywhere: everything is inline
    assert page.execute_script(
        "return [...document.querySelectorAll('[src],[href]')].filter(e => !(e.getAttribute('src')||e.getAttribute('href')).startsWith('#')).length"
    ) == 0
    errors = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []


@pytest.mark.chromium
def test_table_numbers_equal_sweep_show_json(page, sweep):
    from selenium.webdriver.common.by import By

    rows = page.find_elements(By.CSS_SELECTOR, "table#results tbody tr")
    assert len(rows) == 3
    for row in rows:
        cells = {td.get_attribute("data-key"): td.get_attribute("data-value")
                 for td in row.find_elements(By.CSS_SELECTOR, "td[data-key]")}
        entry = entry_for(sweep.description, float(cells["config.lr"]))
        assert int(row.get_attribute("data-run")) == entry["run"]
        assert int(row.get_attribute("data-attempt")) == entry["attempt"]
        metrics = entry["metrics"]
        for key in ("train/acc", "val/acc", "train/loss", "best/val_acc", "perf/run_seconds"):
            assert float(cells[key]) == metrics[key], key
        assert int(cells["best/epoch"]) == metrics["best/epoch"]
        assert int(cells["epochs_run"]) == metrics["epochs_run"]
        assert cells["state"] == entry["state"]
        # the text a reader sees is the same number, rounded
        shown = row.find_element(By.CSS_SELECTOR, "td[data-key='val/acc']").text
        assert shown == f"{metrics['val/acc']:.2%}"


@pytest.mark.chromium
def test_verdicts_are_computed_from_the_runs(page, sweep):
    from selenium.webdriver.common.by import By

    verdicts = {}
    for row in page.find_elements(By.CSS_SELECTOR, "table#verdicts tbody tr"):
        config, label, reason = (td.text for td in row.find_elements(By.TAG_NAME, "td"))
        verdicts[config] = (label, reason)
    diverging = entry_for(sweep.description, 20.0)
    assert diverging["state"] == "diverged"
    label, reason = verdicts["lr=20"]
    assert label == "diverged"
    assert f"{diverging['metrics']['train/loss']:.4g}" in reason and "epoch 1" in reason

    trained = [entry_for(sweep.description, lr) for lr in (0.01, 0.2)]
    best = max(trained, key=lambda e: e["metrics"]["val/acc"])
    other = min(trained, key=lambda e: e["metrics"]["val/acc"])
    label, reason = verdicts[config_label(best["config"])]
    assert label == "best" and f"{best['metrics']['val/acc']:.2%}" in reason
    label, reason = verdicts[config_label(other["config"])]
    gap = (best["metrics"]["val/acc"] - other["metrics"]["val/acc"]) * 100
    assert f"{gap:.2f} points behind the best" in reason
    assert label in ("too slow", "worse", "within 1 point of best", "unstable", "near chance")

    # the published figures sit next to the measured ones, with their difference
    cells = [td.text for td in page.find_elements(By.CSS_SELECTOR, "table#published tbody tr:first-child td")]
    measured = entry_for(sweep.description, 0.2)["metrics"]["val/acc"]
    assert cells[:5] == ["lr=0.2", "val/acc", "90.00%", f"{measured:.2%}", f"{(measured - 0.9) * 100:+.2f} pts"]


# ---------------------------------------------------------------- W&B report (dry-run: no server)


def test_wandb_dry_run_prints_grouped_line_plots_parallel_coordinates_and_group_filter(sweep):
    env = {**sweep.env, "WANDB_BASE_URL": "http://127.0.0.1:9"}  # nothing listens there: any request would fail
    proc = lrtrack("report", sweep.id, "--wandb", "--dry-run", "--store", sweep.store, env=env, cwd=sweep.root)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["project"] == sweep.description["sweep"]["project"]
    blocks = report["spec"]["blocks"]
    (grid,) = [b for b in blocks if b["type"] == "panel-grid"]
    (runset,) = grid["metadata"]["runSets"]
    assert runset["filters"]["filters"] == [
        {"key": {"section": "run", "name": "group"}, "op": "=", "value": sweep.id, "disabled": False}
    ]
    assert runset["grouping"] == [{"section": "config", "name": "lr.value"}]
    panels = grid["metadata"]["panelBankSectionConfig"]["panels"]
    lines = {tuple(p["config"]["metrics"]): p["config"] for p in panels if p["viewType"] == "Run History Line Plot"}
    for metric in ("val/acc", "train/loss"):
        assert lines[(metric,)]["xAxis"] == "epoch"
        assert lines[(metric,)]["groupBy"] == "lr.value"
    (parallel,) = [p for p in panels if p["viewType"] == "Parallel Coordinates Plot"]
    accessors = [c["accessor"] for c in parallel["config"]["columns"]]
    assert accessors == ["config:lr.value", "summary:train/loss", "summary:val/acc"]
    assert [p for p in panels if p["viewType"] == "Run Comparer"]
    markdown = "\n".join(b.get("content", "") for b in blocks if b["type"] == "markdown-block")
    for lr in LRS:
        metrics = entry_for(sweep.description, lr)["metrics"]
        assert f"{metrics['val/acc']:.2%}" in markdown
    assert "**lr=20: diverged**" in markdown


# ---------------------------------------------------------------- bad input


def test_unknown_sweep_id_is_one_line_exit_2(sweep, tmp_path):
    target = tmp_path / "r.html"
    proc = lrtrack("report", "no-such-sweep", "--html", str(target), "--store", sweep.store, env=sweep.env)
    assert assert_one_line_error(proc).startswith("error: unknown sweep id 'no-such-sweep'")
    assert not target.exists()


def test_unwritable_html_path_is_one_line_exit_2_and_writes_nothing(sweep, tmp_path):
    missing_dir = tmp_path / "no-such-dir" / "r.html"
    proc = lrtrack("report", sweep.id, "--html", str(missing_dir), "--store", sweep.store, env=sweep.env)
    assert assert_one_line_error(proc).startswith(f"error: --html: cannot write {missing_dir}")
    assert not missing_dir.parent.exists()

    a_directory = tmp_path / "taken"
    a_directory.mkdir()
    proc = lrtrack("report", sweep.id, "--html", str(a_directory), "--store", sweep.store, env=sweep.env)
    assert_one_line_error(proc, "--html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken", "wandb-dir"]  # no temporary file left behind
    assert list(a_directory.iterdir()) == []


def test_wandb_without_login_or_dry_run_flag_misuse_exit_2(sweep):
    proc = lrtrack("report", sweep.id, "--wandb", "--store", sweep.store, env=sweep.env)
    assert_one_line_error(proc, "--wandb")
    proc = lrtrack("report", sweep.id, "--dry-run", "--store", sweep.store, env=sweep.env)
    assert assert_one_line_error(proc) == "error: --dry-run: only meaningful with --wandb"


# ---------------------------------------------------------------- verdict rules on known histories


def run(number: int, lr: float, val_accs: list[float], losses: list[float], state: str = "finished",
        **config) -> ConfigResult:
    history = [{"epoch": e, "train/loss": loss, "train/acc": acc, "val/acc": acc, "lr": lr}
               for e, (acc, loss) in enumerate(zip(val_accs, losses), start=1)]
    best = max(range(len(val_accs)), key=lambda i: val_accs[i])
    summary = {**history[-1], "state": state, "epochs_run": len(history), "best/val_acc": val_accs[best],
               "best/epoch": best + 1, "perf/run_seconds": 1.0}
    values = {"lr": lr, **config}
    return ConfigResult(run=number, attempt=1, config=values, label=config_label(values), state=state,
                        history=history, summary=summary)


def study(rows: list[ConfigResult], swept: list[str] | None = None, fixed: dict | None = None,
          expected: list[ExpectedResult] | None = None) -> Study:
    swept = swept or ["lr"]
    return Study(
        sweep_id="hand", name="hand-built", description="", backend="local", state="finished", project="p",
        entity=None, method="grid", metric=Metric(), swept=swept,
        parameters={k: {"values": sorted({r.config[k] for r in rows})} for k in swept},
        fixed=fixed or {"dataset": "digits"}, num_classes=10, created_at=datetime.now(timezone.utc), rows=rows,
        expected=expected or [],
    )


def test_verdict_rules():
    rows = [
        run(1, 1e-3, [0.60, 0.70, 0.80], [1.2, 0.9, 0.7]),  # 10 points behind, +10 in the last epoch
        run(2, 1e-2, [0.85, 0.88, 0.90], [0.5, 0.4, 0.35]),  # best
        run(3, 2e-2, [0.86, 0.89, 0.895], [0.45, 0.38, 0.37]),  # 0.5 points behind
        run(4, 5e-2, [0.88, 0.60, 0.65], [0.4, 0.9, 0.8]),  # fell 23 points from its best
        run(5, 1e-1, [0.11, 0.09, 0.12], [2.3, 2.3, 2.3]),  # near chance (<= 15%)
        run(6, 10.0, [0.10], [math.nan], state="diverged"),
        run(7, 5.0, [0.10, 0.10], [50.0, 250.0], state="finished"),  # over the default limit of 100
    ]
    data = study(rows)
    judge(data)
    labels = {r.label: r.verdict.label for r in data.rows}
    assert labels == {"lr=0.001": "too slow", "lr=0.01": "best", "lr=0.02": "within 1 point of best",
                      "lr=0.05": "unstable", "lr=0.1": "near chance", "lr=10": "diverged", "lr=5": "diverged"}
    reasons = {r.label: r.verdict.reason for r in data.rows}
    assert "10.00 points behind the best (lr=0.01: 90.00%)" in reasons["lr=0.001"]
    assert "val acc +10.00 points/epoch over epochs 1-3" in reasons["lr=0.001"]
    assert reasons["lr=0.01"].startswith("final val/acc 90.00%, highest of 4 configs "
                                         "(not ranked: lr=0.1 near chance, lr=10 diverged, lr=5 diverged)")
    assert "0.50 points behind" in reasons["lr=0.02"]
    assert "fell from 88.00% (epoch 1) to 65.00%" in reasons["lr=0.05"]
    assert "12.00% <= 1.5 x chance (15%)" in reasons["lr=0.1"]
    assert "non-finite at epoch 1" in reasons["lr=10"]
    assert "reached 250 (limit 100) at epoch 2" in reasons["lr=5"]


def test_comparison_with_published_figures_per_metric_and_per_epoch():
    rows = [run(1, 1e-3, [0.80, 0.87], [0.5, 0.32])]
    expected = [ExpectedResult(config={"lr": 0.001}, metrics={"val/acc": 0.86, "train/loss": [0.55, 0.30]}),
                ExpectedResult(config={"lr": 0.5}, metrics={"val/acc": 0.5})]
    found, absent = compare_expected(study(rows, expected=expected))
    assert found.row is rows[0] and absent.row is None
    diffs = {line.metric: line.difference for line in found.lines}
    assert diffs == pytest.approx({"val/acc": 0.01, "train/loss e1": -0.05, "train/loss e2": 0.02})
    assert [line.text("difference") for line in found.lines] == ["+1.00 pts", "-0.0500", "+0.0200"]
    assert absent.lines[0].measured is None and absent.lines[0].text("difference") == "—"


def test_grid_over_two_parameters_gets_a_heatmap_and_a_schedule_an_lr_chart():
    rows = [run(i, lr, [0.5 + 0.1 * i, 0.55 + 0.1 * i], [1.0, 0.8], optimizer=opt)
            for i, (lr, opt) in enumerate([(1e-3, "adam"), (1e-2, "adam"), (1e-3, "sgd"), (1e-2, "sgd")], start=1)]
    for row in rows:  # a step schedule halves the rate after epoch 1
        row.history[1]["lr"] = row.config["lr"] / 2
    html = render_html(study(rows, swept=["lr", "optimizer"], fixed={"dataset": "digits", "scheduler": "step"}))
    assert 'id="chart-heatmap"' in html and 'id="chart-lr"' in html
    for chart in ("train-loss", "val-acc", "lr"):
        assert html.count(f'<g id="{chart}-line-') == 4
    assert 'id="heatmap-cells"' in html
    for value in ("65.0", "75.0", "85.0", "95.0"):  # every cell's final val acc, annotated in percent
        assert f">{value}<" in html
