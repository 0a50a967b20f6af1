"""Verdicts in the studies' own terms (`lrtrack.verdicts`), on synthetic curves with known answers."""

from __future__ import annotations

from test_report import run, study

from lrtrack.verdicts import judge, still_learning


def verdicts(data) -> dict[str, str]:
    judge(data)
    return {row.label: row.verdict.label for row in data.rows}


def test_study_a_as_published_best_within_one_point_too_slow():
    # Study A's measured curves (full Fashion-MNIST, 5 epochs); lr 0.0001's train loss fell 4.7% in
    # its last epoch, so the old one-epoch rule (5%) called it "worse"
    rows = [run(1, 0.001, [0.84, 0.855, 0.862, 0.866, 0.8708], [0.50, 0.38, 0.35, 0.33, 0.31]),
            run(2, 0.0005, [0.83, 0.85, 0.857, 0.862, 0.8652], [0.55, 0.41, 0.37, 0.35, 0.335]),
            run(3, 0.0001, [0.78, 0.82, 0.83, 0.835, 0.8371], [0.80, 0.55, 0.49, 0.455, 0.4337])]
    assert verdicts(study(rows)) == {"lr=0.001": "best", "lr=0.0005": "within 1 point of best", "lr=0.0001": "too slow"}
    assert "still learning" in rows[2].verdict.reason and "below the best's 0.001" in rows[2].verdict.reason


def test_study_b_and_d_shapes():
    # the measured curves of `lrtrack reproduce` on the MNIST subset (seed 0)
    b = [run(1, 0.1, [0.105, 0.093, 0.115], [2.4996, 2.3101, 2.3075]),
         run(2, 0.01, [0.9455, 0.9595, 0.9645], [0.5255, 0.1488, 0.1101]),
         run(3, 0.0001, [0.578, 0.656, 0.7915], [2.2645, 1.975, 1.331])]
    assert verdicts(study(b)) == {"lr=0.1": "near chance", "lr=0.01": "best", "lr=0.0001": "too slow"}
    assert "rate 0.1 above the best's 0.01: too fast to learn" in b[0].verdict.reason
    d = [run(1, 0.5, [0.1106, 0.1025, 0.1062, 0.1025, 0.1025], [2.2863, 2.3112, 2.3127, 2.3115, 2.313]),
         run(2, 0.01, [0.8075, 0.89, 0.92, 0.9269, 0.945], [1.7535, 0.4683, 0.315, 0.2303, 0.1873]),
         run(3, 0.0001, [0.1188, 0.1262, 0.125, 0.1331, 0.1431], [2.298, 2.2969, 2.2958, 2.2947, 2.2936])]
    assert verdicts(study(d)) == {"lr=0.5": "near chance", "lr=0.01": "best", "lr=0.0001": "too slow"}
    # near chance, yet rising over its last 4 epochs beyond their noise: it has barely started
    assert "80.19 points behind the best" in d[2].verdict.reason
    assert "val acc +0.59 points/epoch over epochs 2-5" in d[2].verdict.reason


def test_noise_does_not_make_a_run_too_slow_where_one_epoch_would():
    noisy = run(1, 0.001, [0.80, 0.81, 0.79, 0.815], [0.60, 0.55, 0.57, 0.54])  # +2.5 points in the last epoch
    assert not still_learning(noisy)
    steady = run(2, 0.001, [0.80, 0.805, 0.81, 0.815], [0.60, 0.59, 0.585, 0.58])  # +0.5 points each epoch
    assert still_learning(steady)
    best = run(3, 0.01, [0.90, 0.92, 0.93, 0.93], [0.3, 0.25, 0.24, 0.24])
    labels = verdicts(study([noisy, best]))
    assert labels["lr=0.001"] == "worse"
    assert verdicts(study([steady, best]))["lr=0.001"] == "too slow"
    # a steady climb whose last epoch dips by 0.1 point (and whose loss wobbles): one epoch would say "no longer
    # improving"; over the last 4 epochs it gains +0.39 points/epoch, three standard errors
    dipped = run(4, 0.001, [0.78, 0.80, 0.806, 0.812, 0.811], [0.62, 0.60, 0.59, 0.595, 0.585])
    assert still_learning(dipped) == "val acc +0.39 points/epoch over epochs 2-5"
    assert verdicts(study([dipped, best]))["lr=0.001"] == "too slow"


def test_a_rate_above_the_best_that_oscillates_or_falls_is_too_fast_or_unstable():
    best = run(1, 0.01, [0.90, 0.93, 0.94, 0.95], [0.3, 0.2, 0.17, 0.15])
    oscillating = run(2, 0.1, [0.85, 0.88, 0.86, 0.875], [0.5, 0.45, 0.48, 0.46])
    falling = run(3, 0.3, [0.85, 0.90, 0.80, 0.78], [0.5, 0.4, 0.6, 0.7])
    labels = verdicts(study([best, oscillating, falling]))
    assert labels == {"lr=0.01": "best", "lr=0.1": "too fast", "lr=0.3": "unstable"}
    assert "oscillates" in oscillating.verdict.reason and "above the best's 0.01" in oscillating.verdict.reason
    assert "fell from 90.00% (epoch 2)" in falling.verdict.reason


def test_an_optimizer_by_lr_grid_is_judged_per_optimizer():
    rows = [run(1, 0.1, [0.85, 0.88, 0.90], [0.5, 0.4, 0.35], optimizer="sgd"),
            run(2, 0.01, [0.50, 0.60, 0.70], [1.5, 1.2, 0.9], optimizer="sgd"),
            run(3, 0.001, [0.90, 0.93, 0.95], [0.3, 0.2, 0.15], optimizer="adam"),
            run(4, 0.01, [0.82, 0.80, 0.815], [0.5, 0.6, 0.55], optimizer="adam")]
    labels = verdicts(study(rows, swept=["lr", "optimizer"]))
    assert labels == {"lr=0.1 optimizer=sgd": "best for optimizer=sgd", "lr=0.01 optimizer=sgd": "too slow",
                      "lr=0.001 optimizer=adam": "best", "lr=0.01 optimizer=adam": "too fast"}
    # sgd's 0.01 is judged against sgd's best (0.1), not against adam's 0.001 (which would make it too fast)
    assert "behind the best (lr=0.1 optimizer=sgd" in rows[1].verdict.reason


def test_a_cancelled_1_epoch_run_is_never_best_over_a_finished_20_epoch_run():
    cancelled = run(1, 0.01, [0.95], [0.2], state="cancelled")
    complete = run(2, 0.001, [0.5 + 0.02 * e for e in range(20)], [1.0 - 0.02 * e for e in range(20)])
    labels = verdicts(study([cancelled, complete], fixed={"dataset": "digits", "epochs": 20}))
    assert labels == {"lr=0.01": "cancelled", "lr=0.001": "best"}
    assert cancelled.verdict.reason == ("stopped after 1 of 20 epochs (cancelled), val/acc 95.00%; "
                                        "not ranked against runs that trained to the end")


def test_without_a_learning_rate_axis_the_plain_rules_stay():
    rows = [run(1, 0.01, [0.90, 0.92, 0.93], [0.3, 0.25, 0.22], optimizer="adam"),
            run(2, 0.01, [0.60, 0.70, 0.80], [1.2, 0.9, 0.7], optimizer="sgd")]
    labels = verdicts(study(rows, swept=["optimizer"]))
    assert labels == {"lr=0.01 optimizer=adam": "best", "lr=0.01 optimizer=sgd": "too slow"}


def test_a_higher_rate_still_learning_is_never_too_slow_and_a_lower_one_that_stopped_is_worse():
    best = run(1, 0.01, [0.90, 0.93, 0.94, 0.95], [0.3, 0.2, 0.17, 0.15])
    fast_rising = run(2, 0.1, [0.70, 0.75, 0.80, 0.85], [0.9, 0.7, 0.6, 0.5])  # behind, climbing steadily
    slow_flat = run(3, 0.001, [0.80, 0.81, 0.80, 0.805], [0.60, 0.59, 0.60, 0.595])  # behind, stopped learning
    labels = verdicts(study([best, fast_rising, slow_flat]))
    assert labels == {"lr=0.01": "best", "lr=0.1": "worse", "lr=0.001": "worse"}
    assert "above the best's 0.01" in fast_rising.verdict.reason and "still learning" in fast_rising.verdict.reason
    assert "below the best's 0.01" in slow_flat.verdict.reason and "no longer learning" in slow_flat.verdict.reason


def test_settings_tried_at_one_rate_only_keep_the_plain_rules():
    # random search over lr and weight decay: no two runs share a weight decay, so no rate ordering applies
    rows = [run(1, 0.003, [0.90, 0.92, 0.93], [0.3, 0.25, 0.22], weight_decay=1e-4),
            run(2, 0.0007, [0.60, 0.70, 0.80], [1.2, 0.9, 0.7], weight_decay=3e-3),
            run(3, 0.02, [0.91, 0.922, 0.925], [0.3, 0.26, 0.25], weight_decay=5e-2)]
    labels = verdicts(study(rows, swept=["lr", "weight_decay"]))
    assert labels == {"lr=0.003 weight_decay=0.0001": "best", "lr=0.0007 weight_decay=0.003": "too slow",
                      "lr=0.02 weight_decay=0.05": "within 1 point of best"}
    assert "rate" not in rows[1].verdict.reason  # judged without the rate's side


def test_cut_short_runs_running_or_crashed_are_not_ranked_and_judge_returns_the_verdicts():
    epochs20 = {"dataset": "digits", "epochs": 20}
    complete = run(1, 0.001, [0.5 + 0.02 * e for e in range(20)], [1.0 - 0.02 * e for e in range(20)])
    running = run(2, 0.01, [0.95, 0.96, 0.97], [0.2, 0.15, 0.1], state="running")
    crashed = run(3, 0.1, [0.96, 0.965], [0.2, 0.18], state="crashed")
    found = judge(data := study([complete, running, crashed], fixed=epochs20))
    assert {run_number: v.label for run_number, v in found.items()} == {1: "best", 2: "running", 3: "crashed"}
    assert [row.verdict for row in data.rows] == [found[1], found[2], found[3]]
    assert "running: epoch 3 of 20" in running.verdict.reason and "stopped after 2 of 20 epochs" in crashed.verdict.reason
    assert "not ranked: lr=0.01 running, lr=0.1 crashed" in complete.verdict.reason
    # nothing complete yet (a sweep in its first epochs): the runs are ranked, each saying it is incomplete
    labels = verdicts(study([running, crashed], fixed=epochs20))
    assert labels == {"lr=0.01": "best", "lr=0.1": "within 1 point of best"}
    assert running.verdict.reason.endswith("[running: epoch 3 of 20]")
    # the epochs a run was configured for may be swept
    short = run(4, 0.01, [0.95], [0.2], state="cancelled", epochs=5)
    done = run(5, 0.01, [0.7, 0.8], [0.6, 0.5], epochs=2)
    assert verdicts(study([short, done], swept=["lr", "epochs"])) == {"lr=0.01 epochs=5": "cancelled",
                                                                     "lr=0.01 epochs=2": "best"}


def test_grid_points_that_never_ran_are_listed_and_an_empty_sweep_says_so(tmp_path):
    import json

    from clitools import lrtrack, write_sweep_spec

    from lrtrack.agent.loop import Agent, AgentSettings
    from lrtrack.config import load_spec
    from lrtrack.store import open_store
    from lrtrack.sweep import create_sweep

    spec = write_sweep_spec(tmp_path / "grid.yaml", "partly-run", {"lr": [0.01, 0.1, 0.001]},
                            model="fcn", epochs=1, train_size=1000, test_size=300)
    store = f"sqlite:///{tmp_path}/store.db"
    with open_store(store) as opened:
        sweep_id = create_sweep(load_spec(spec), opened, "local").id
    empty = lrtrack("report", sweep_id, "--store", store)
    assert empty.returncode == 1
    assert empty.stderr.strip() == (f"error: sweep {sweep_id} has no runs yet: nothing to report "
                                    f"(start one with: lrtrack agent {sweep_id})")
    assert empty.stdout == ""
    from lrtrack.cli.display import console, print_sweep
    from lrtrack.sweep import describe

    with open_store(store) as opened, console.capture() as shown_empty:
        print_sweep(describe(opened, sweep_id))
    assert shown_empty.get().splitlines()[-1] == f"no run has started yet (start one with: lrtrack agent {sweep_id})"
    with open_store(store) as opened:  # one run of three, trained here
        Agent(opened, sweep_id, AgentSettings(offline=True, count=1), report=lambda line: None).run()
    report = lrtrack("report", sweep_id, "--store", store)
    assert report.returncode == 0, report.stderr
    assert "Grid points that never ran (2): lr=0.1, lr=0.001" in report.stdout
    shown = lrtrack("sweep", "show", sweep_id, "--store", store, "--json")
    (entry,) = json.loads(shown.stdout)["runs"]
    assert entry["verdict"] == "best" and entry["verdict_reason"].startswith("final val/acc")


def test_reproduce_checks_study_a_verdicts_against_the_published_ones():
    from pathlib import Path

    from lrtrack.config import load_spec
    from lrtrack.studies import STUDIES, rows_for

    spec = load_spec(Path(__file__).resolve().parents[1] / "sweeps" / "study-a-fashion-fcn-adam.yaml")

    def study_a(slow_accs: list[float], slow_losses: list[float]):
        rows = [run(1, 0.001, [0.8447, 0.8553, 0.8649, 0.8666, 0.8694], [0.5459, 0.399, 0.3584, 0.3318, 0.3121]),
                run(2, 0.0005, [0.828, 0.8493, 0.8586, 0.8591, 0.8665], [0.6076, 0.428, 0.3884, 0.3625, 0.3421]),
                run(3, 0.0001, slow_accs, slow_losses)]
        for row in rows:  # study A's train accuracy runs about 1.5 points above its test accuracy
            for epoch in [*row.history, row.summary]:
                epoch["train/acc"] = epoch["val/acc"] + 0.0155
        data = study(rows, fixed=spec.fixed, expected=list(spec.expected))
        judge(data)
        return {row.label: row for row in rows_for(data, STUDIES[spec.name])}

    def verdict_check(row) -> tuple[str, bool]:
        (check,) = [c for c in row.checks if c[0].startswith("verdict ")]
        return check

    # measured (a fresh study A run, full Fashion-MNIST): as published, every row passes
    rows = study_a([0.7864, 0.8192, 0.8296, 0.834, 0.8371], [0.9101, 0.5539, 0.4895, 0.4574, 0.4365])
    assert {label: row.verdict for label, row in rows.items()} == {
        "lr=0.001": "best", "lr=0.0005": "within 1 point of best", "lr=0.0001": "too slow"}
    assert all(row.passed for row in rows.values())
    assert verdict_check(rows["lr=0.0001"]) == ("verdict too slow, as published (ours: too slow)", True)
    # the same accuracy reached by a curve that stopped rising: not "too slow", and the row fails on that alone
    rows = study_a([0.8364, 0.8381, 0.8366, 0.8379, 0.8371], [0.4375, 0.4368, 0.4371, 0.4366, 0.4365])
    slow = rows["lr=0.0001"]
    assert slow.verdict == "worse" and slow.passed is False
    assert [ok for text, ok in slow.checks if not ok] == [False]
    assert verdict_check(slow) == ("verdict too slow, as published (ours: worse)", False)


def test_a_divergence_names_its_own_epoch_when_an_earlier_epoch_logged_no_train_loss():
    # epoch 1 logged only validation metrics (a resumed run, say): the loss that broke the limit is epoch 3's
    best = run(1, 0.01, [0.90, 0.93, 0.94], [0.3, 0.2, 0.17])
    diverging = run(2, 1.0, [0.5, 0.3, 0.1], [0.9, 5.0, 1e6])
    del diverging.history[0]["train/loss"]
    verdicts(study([best, diverging]))
    assert diverging.verdict.label == "diverged"
    assert diverging.verdict.reason == f"train loss reached 1e+06 (limit {diverging.diverge_loss:g}) at epoch 3"
