"""`lrtrack lr-find`: the range test's schedule, smoothing, stopping rules, suggestion rules on
curves with known answers, state restoration, the batched (vmap) path, and the command end to end
(offline W&B run read back, chart in headless Chromium, the sweep file accepted by `sweep create`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from clitools import assert_one_line_error, create, lrtrack, only_run_dir

from lrtrack import wandb_files
from lrtrack.config import TrainConfig
from lrtrack.lr_find import (
    COMPLETED,
    DIVERGED,
    NON_FINITE,
    CurveRecorder,
    RangeTestSettings,
    lr_find,
    lr_schedule,
    minimum_tenth,
    range_test,
    steep,
    suggest,
    valley,
)

DIGITS = {"dataset": "digits", "model": "fcn", "optimizer": "sgd"}


# ---------------------------------------------------------------- schedule, smoothing, stopping

def test_schedule_is_exponential_from_start_to_end():
    lrs = lr_schedule(1e-7, 10.0, 100)
    assert len(lrs) == 100
    assert lrs[0] == 1e-7 and lrs[-1] == pytest.approx(10.0)
    ratios = [b / a for a, b in zip(lrs, lrs[1:])]
    assert ratios == pytest.approx([(10.0 / 1e-7) ** (1 / 99)] * 99)  # one constant factor per batch


def test_ema_is_bias_corrected():
    recorder = CurveRecorder(beta=0.98, stop_factor=4.0)
    for loss in (2.0, 2.0, 2.0):
        recorder.add(1e-3, loss)
    assert recorder.curve.smoothed == pytest.approx([2.0, 2.0, 2.0])  # uncorrected: 0.04, 0.0792, ...
    recorder = CurveRecorder(beta=0.9, stop_factor=4.0)
    recorder.add(1e-3, 1.0)
    recorder.add(1e-3, 3.0)
    raw_average = 0.9 * 0.1 * 1.0 + 0.1 * 3.0
    assert recorder.curve.smoothed == pytest.approx([1.0, raw_average / (1 - 0.9**2)])


def test_early_stop_once_the_smoothed_loss_exceeds_four_times_its_best():
    recorder = CurveRecorder(beta=0.0, stop_factor=4.0)  # beta 0: smoothed == raw, to see the threshold
    assert [recorder.add(lr, loss) for lr, loss in [(1, 1.0), (2, 0.5), (3, 1.99), (4, 2.0)]] == [False] * 4
    assert recorder.add(5, 2.01) is True  # 2.01 > 4 x 0.5
    assert recorder.end().stop == DIVERGED and recorder.curve.lrs == [1, 2, 3, 4, 5]


def test_nan_or_inf_ends_the_curve_and_is_left_out():
    for bad in (math.nan, math.inf):
        recorder = CurveRecorder(beta=0.98, stop_factor=4.0)
        recorder.add(1e-3, 2.0)
        assert recorder.add(1e-2, bad) is True
        curve = recorder.end()
        assert curve.stop == NON_FINITE and curve.losses == [2.0] and curve.lrs == [1e-3]


def test_a_nan_batch_ends_the_range_test_not_the_call():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    batches = [(x, y)] * 6 + [(torch.full_like(x, math.nan), y)] + [(x, y)] * 20
    curve = range_test(model, optimizer, iter(batches), RangeTestSettings(num_iter=20))
    assert curve.stop == NON_FINITE and len(curve.lrs) == 6
    assert all(math.isfinite(v) for v in curve.smoothed)
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the NaN step never reached the weights


# ---------------------------------------------------------------- suggestion rules, known answers

def synthetic_curve() -> tuple[list[float], list[float]]:
    """A smoothed curve over 1e-6..1 (10 points per decade): a slight rise to 1e-5, a sigmoid
    descent centred on 1e-3 (steepest there), then a parabolic rise from 1e-1 (the minimum)."""
    x = np.round(np.arange(-6.0, 0.01, 0.1), 6)
    loss = 2.0 - 1.5 / (1 + np.exp(-(x + 3) / 0.3)) + 5 * np.clip(x + 1, 0, None) ** 2 + 0.1 * np.clip(x + 5, None, 0)
    return list(10.0**x), list(loss)


def test_steep_is_the_steepest_descent_against_log_lr():
    lrs, smoothed = synthetic_curve()
    assert steep(lrs, smoothed).lr == pytest.approx(1e-3)
    assert suggest(lrs, smoothed, num_iter=61)["steep"].lr == pytest.approx(1e-3)


def test_minimum_tenth_is_the_lowest_point_over_ten():
    lrs, smoothed = synthetic_curve()
    suggestion = minimum_tenth(lrs, smoothed)
    assert suggestion.lr == pytest.approx(1e-1 / 10)
    assert "at lr 0.1" in suggestion.detail


def test_valley_is_the_middle_of_the_longest_fall_even_across_a_bump():
    lrs, smoothed = synthetic_curve()
    # the loss falls from 1e-5 to the minimum at 1e-1: the middle, in log lr, is 1e-3
    assert valley(lrs, smoothed).lr == pytest.approx(1e-3)
    bumped = list(smoothed)
    bumped[35] += 0.05  # a bump at 3e-3 does not split the stretch in two
    assert valley(lrs, bumped).lr == pytest.approx(1e-3)
    # a rise, then a fall from 1e-4 to 1e-2 only: middle 1e-3
    x = np.round(np.log10(lrs), 6)
    shaped = np.where(x < -4, 1 + 0.5 * (x + 6), np.where(x <= -2, 3 - (x + 4), 1 + 3 * (x + 2)))
    assert valley(lrs, list(shaped)).lr == pytest.approx(1e-3)


def test_the_first_points_are_left_out():
    lrs, smoothed = synthetic_curve()
    noisy_start = [0.1] + smoothed[1:]  # one lucky first batch: the lowest point of the curve
    assert minimum_tenth(lrs, noisy_start).lr == pytest.approx(1e-7)
    assert suggest(lrs, noisy_start, num_iter=61)["minimum/10"].lr == pytest.approx(1e-2)


# ---------------------------------------------------------------- nothing carries over

def test_range_test_restores_model_and_optimizer_state():
    import torch

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(32, 1, 8, 8), torch.randint(0, 10, (32,))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()  # some optimizer state (Adam moments, step count) to restore
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    moments = {k: {n: t.clone() if torch.is_tensor(t) else t for n, t in s.items()}
               for k, s in optimizer.state_dict()["state"].items()}
    curve = range_test(model, optimizer, iter([(x, y)] * 20), RangeTestSettings(num_iter=20))
    assert len(curve.lrs) > 1
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    state = optimizer.state_dict()
    assert state["param_groups"][0]["lr"] == 1e-3
    for k, s in moments.items():
        for n, t in s.items():
            assert torch.equal(state["state"][k][n], t) if torch.is_tensor(t) else state["state"][k][n] == t


def test_training_after_a_range_test_is_identical():
    import torch

    from lrtrack.train import run

    config = TrainConfig(**DIGITS, lr=0.1, epochs=1, seed=3)
    before = run(config).history
    rng = torch.random.get_rng_state()
    lr_find(config, RangeTestSettings(num_iter=20, seeds=2))
    assert torch.equal(torch.random.get_rng_state(), rng)  # the global RNG is untouched
    after = run(config).history
    strip = [{k: v for k, v in row.items() if not k.startswith("perf/")} for row in (before + after)]
    assert strip[0] == strip[1]


def test_seeds_trained_together_equal_seeds_one_after_another():
    config = TrainConfig(**DIGITS)
    settings = RangeTestSettings(num_iter=30, seeds=2, end_lr=1.0)
    together = lr_find(config, settings)
    apart = lr_find(config, settings, batched=False)
    assert together.batched and not apart.batched
    for a, b in zip(together.curves, apart.curves):
        assert a.lrs == b.lrs
        assert a.losses == pytest.approx(b.losses, rel=1e-4)


# ---------------------------------------------------------------- both data paths

def test_lr_find_streams_data_over_the_budget_cycling_the_loader_like_the_resident_path():
    """FakeData (a dataset by reference) over ``resident_budget_mb`` takes the streaming path (a
    DataLoader with a worker process): the range test takes more batches than an epoch holds and
    gets the resident path's curves exactly; the seeds run one after another; no worker outlives it."""
    import multiprocessing

    import torch

    from lrtrack.data import load_data

    fake = dict(dataset="torchvision.datasets:FakeData", model="fcn", optimizer="sgd", batch_size=16, device="cpu",
                dataset_args={"size": 60, "image_size": [1, 8, 8], "num_classes": 4})  # 48 training items: 3 batches
    streamed_config = TrainConfig(**fake, resident_budget_mb=0.01, loader_workers=1)
    data = load_data(streamed_config, torch.device("cpu"))
    data.close()
    assert data.path == "streaming"
    settings = RangeTestSettings(num_iter=12, seeds=2, end_lr=0.1)

    streamed = lr_find(streamed_config, settings)
    resident = lr_find(TrainConfig(**fake), settings, batched=False)
    assert not streamed.batched  # seeds train together only on resident tensors
    assert not multiprocessing.active_children()
    for ours, theirs in zip(streamed.curves, resident.curves, strict=True):
        assert ours.stop == COMPLETED and len(ours.lrs) == settings.num_iter
        assert (ours.lrs, ours.losses) == (theirs.lrs, theirs.losses)
    assert streamed.curves[0].losses != streamed.curves[1].losses  # each seed its own weights and order


# ---------------------------------------------------------------- the command end to end

def test_lr_find_command_writes_table_wandb_run_chart_and_a_sweep_create_accepts(tmp_path, offline_wandb):
    proc = lrtrack("lr-find", "--dataset", "digits", "--model", "fcn", "--optimizer", "sgd", "--seeds", "3",
                   "--write-sweep", "s.yaml", "--html", "f.html", "--offline", env=_wide_env())
    assert proc.returncode == 0, proc.stderr
    for rule in ("valley", "steep", "minimum/10"):
        assert rule in proc.stdout
    assert "seeds' range" in proc.stdout and "decades" in proc.stdout

    run_dir = only_run_dir(offline_wandb)
    summary = wandb_files.read_summary(run_dir)["summary"]
    rows = wandb_files.history_rows(wandb_files.read_records(run_dir))
    assert len(rows) == summary["iterations"] > 50
    assert [row["iteration"] for row in rows] == list(range(len(rows)))
    assert rows[0]["lr"] == pytest.approx(1e-7) and all(math.isfinite(row["loss"]) for row in rows)
    for rule in ("valley", "steep", "minimum/10"):
        assert summary[f"suggestions/{rule}"] > 0 and f"spread/{rule}/decades" in summary
    assert summary["chart"]["_type"] == "image-file" and (run_dir / "files" / summary["chart"]["path"]).is_file()

    spec = yaml.safe_load((tmp_path / "s.yaml").read_text())
    centre = summary["suggestion"]
    assert spec["parameters"]["lr"]["values"] == [float(f"{centre * 10 ** (k / 2):.2g}") for k in (-2, -1, 0, 1)]
    assert spec["fixed"]["dataset"] == "digits" and spec["fixed"]["optimizer"] == "sgd" and "lr" not in spec["fixed"]
    assert spec["range_test"]["suggestions"][spec["range_test"]["settings"]["suggestion"]]["lr"] == centre
    create(tmp_path / "s.yaml", f"sqlite:///{tmp_path / 'store.db'}")
    _chart_renders_in_chromium(tmp_path / "f.html")


def _wide_env() -> dict[str, str]:
    import os

    return {**os.environ, "COLUMNS": "200"}


def _chart_renders_in_chromium(page_path) -> None:
    """Open the page in headless Chromium (as tests/test_report.py does) and count the drawn elements."""
    import shutil
    import tempfile

    chromedriver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        from selenium.webdriver.common.by import By
    except ImportError:
        pytest.skip("selenium is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-profile-')}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        driver.get(page_path.resolve().as_uri())
        svg = driver.find_element(By.CSS_SELECTOR, "#chart-lr-find svg")
        assert svg.size["width"] > 300 and svg.size["height"] > 150
        assert len(driver.find_elements(By.CSS_SELECTOR, "#chart-lr-find [id='lr-find-line-0'] path")) == 1
        assert len(driver.find_elements(By.CSS_SELECTOR, "#chart-lr-find [id^='lr-find-mark-']")) == 3
        assert driver.find_elements(By.CSS_SELECTOR, "#chart-lr-find [id='lr-find-band']")  # seeds' band
        rules = [row.get_attribute("data-rule") for row in driver.find_elements(By.CSS_SELECTOR, "#suggestions tr[data-rule]")]
        assert rules == ["valley", "steep", "minimum/10"]
    finally:
        driver.quit()


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--start-lr", "1", "--end-lr", "0.5"], "--start-lr"),
        (["--num-iter", "5"], "--num-iter"),
        (["--start-lr", "-1e-5"], "--start-lr"),
        (["--seeds", "0"], "--seeds"),
        (["--method", "hyperband"], "--method"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag_exit_2_nothing_written(tmp_path, offline_wandb, args, flag):
    proc = lrtrack("lr-find", "--dataset", "digits", *args, "--html", "f.html", "--write-sweep", "s.yaml")
    assert_one_line_error(proc, flag)
    assert not (tmp_path / "f.html").exists() and not (tmp_path / "s.yaml").exists()
    assert not (offline_wandb / "wandb").exists()


def test_report_draws_the_range_test_beside_the_sweep_with_the_winning_lr():
    from test_report import run, study

    from lrtrack.config import TrainConfig as Config
    from lrtrack.lr_find import sweep_spec
    from lrtrack.report.html import charts
    from lrtrack.verdicts import judge

    result = lr_find(Config(**DIGITS), RangeTestSettings(num_iter=30, end_lr=1.0))
    spec = sweep_spec(result)
    rows = [run(1, 0.01, [0.5, 0.6], [1.5, 1.2]), run(2, 0.1, [0.8, 0.9], [0.6, 0.4])]
    data = study(rows)
    data.range_test = spec["range_test"]
    judge(data)
    (chart,) = [c for c in charts(data) if c["id"] == "lr-find"]
    assert 'id="lr-find-won"' in chart["svg"] and "best in sweep: lr 0.1" in chart["svg"]
    assert chart["svg"].count('id="lr-find-mark-') == sum(s["lr"] is not None for s in spec["range_test"]["suggestions"].values())
