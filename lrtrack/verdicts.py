"""Verdicts: what a learning-rate study says of each configuration, computed from its numbers.

The one definition, used by the HTML, Markdown and W&B reports, ``sweep show``,
``lrtrack reproduce`` and the dashboard. `judge` gives every `ConfigResult` of a study
a `Verdict` with the numbers behind it, in this order:

1. ``diverged`` (train loss non-finite or above the run's ``diverge_loss``), ``failed``,
   ``near chance`` (final val accuracy at most `CHANCE_FACTOR` x chance);
2. a run that has fewer epochs than configured and did not finish or diverge — cancelled,
   interrupted, early-stopped (hyperband), crashed, still running — while complete runs
   exist is labelled with its state and not ranked against them, so it is never ``best``
   over a run that trained to the end (`cut_short`);
3. the rest are ranked on the sweep's metric. Where the sweep varies ``lr``, within each
   *group* of runs that share every other swept setting (so an ``optimizer x lr`` sweep
   is judged per optimizer) and that tried at least two rates, against the group's best:
   ``best`` (the best of the whole sweep; ``best for optimizer=sgd`` for the best of
   another group), ``within 1 point of best``, then by the learning rate's side:
   - below the best's rate and `still_learning`: ``too slow``;
   - above the best's rate: ``unstable`` when val accuracy fell more than
     `UNSTABLE_DROP` from its own best epoch, else ``too fast`` when its curve stalls,
     oscillates or falls from its peak (`settled`);
   - otherwise ``unstable`` (a large fall) or ``worse`` (behind; a lower rate that no
     longer learns, or a higher rate still learning).
   Runs with no rate ordering — a sweep that does not vary ``lr``, or a setting tried
   at one rate only (random search over several parameters) — keep the plain rules
   against the sweep's best: ``best``, ``within 1 point of best``, ``unstable``,
   ``too slow`` (still learning) or ``worse``.
4. Near-chance runs are placed by their rate too: below the best's rate and still
   learning, ``too slow`` (study D's 0.0001 has barely started); above it, ``near
   chance`` with "too fast to learn" in its reason.

**Still learning** is measured over the last `WINDOW` epochs, not one epoch against a
threshold: the least-squares slope of val accuracy must be positive, gain at least
`MIN_GAIN` over the window, and stand out of the epoch-to-epoch noise (slope at least
twice its standard error); or train loss must have fallen in every one of those epochs,
by at least `MIN_LOSS_FALL` in all. With only two epochs the one difference must exceed
`MIN_GAIN`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lrtrack.formatting import format_metric, format_value, is_accuracy
from lrtrack.metrics import TRAIN_LOSS, VAL_ACC
from lrtrack.states import State

if TYPE_CHECKING:
    from lrtrack.report.study import ConfigResult, Study

#: "near chance": final accuracy at most this many times chance level.
CHANCE_FACTOR = 1.5
#: Accuracies within this many points (fractions: 0.01) of the best count as "as good".
CLOSE_POINTS = 0.01
#: Unstable: final val acc this far below the run's own best epoch.
UNSTABLE_DROP = 0.02
#: Epochs at the end of a run over which "still learning" is measured.
WINDOW = 4
#: Still learning: val acc gains at least this much over the window (0.2 points)...
MIN_GAIN = 0.002
#: ...or train loss falls in every epoch of the window, by this fraction in all.
MIN_LOSS_FALL = 0.02
#: States in which a run with fewer epochs than configured still counts as complete.
RAN_TO_END = (State.FINISHED, State.DIVERGED)


def rules_text() -> str:
    """The rules in one paragraph, with the numbers in force (the HTML report's footer)."""
    return (f"diverged = non-finite train loss or above the run's divergence limit; near chance = final val acc "
            f"<= {CHANCE_FACTOR:g} x chance; runs stopped before their configured epochs (cancelled, interrupted, "
            f"early-stopped, crashed, running) are not ranked against complete ones; within each group of runs "
            f"sharing all but lr and trying two or more rates: best = best final metric, within 1 point = at most "
            f"{CLOSE_POINTS * 100:g} point behind it; too slow = a lower rate, behind and still learning (over the last "
            f"{WINDOW} epochs: val acc slope > 0, gain >= {MIN_GAIN * 100:g} points and >= 2 standard errors, or train "
            f"loss falling every epoch, >= {MIN_LOSS_FALL:.0%} in all); too fast = a higher rate whose val acc stalls, "
            f"oscillates or sits below its peak; unstable = final val acc more than {UNSTABLE_DROP * 100:g} points "
            f"below the run's own best; worse = behind otherwise. Without a rate ordering (lr not swept, or one rate "
            f"per setting) the same rules without the rate's side, against the sweep's best.")


@dataclass
class Verdict:
    label: str  #: short: "best", "diverged", "too slow"...
    kind: str  #: css class / markdown marker: good, ok, slow, bad
    reason: str  #: the numbers that justify it


def judge(study: Study) -> dict[int, Verdict]:
    """Give every config of ``study`` a verdict (see the module docstring); returns them by run number
    (what the dashboard and ``sweep show`` need)."""
    key, maximize = study.metric.name, study.metric.goal == "maximize"
    near_chance = CHANCE_FACTOR * study.chance if study.chance is not None else None  # unknown: no such verdict
    candidates: list[ConfigResult] = []
    for row in study.rows:
        row.verdict = _failure_verdict(row, near_chance)
        if row.verdict is None and row.final(key) is not None:
            candidates.append(row)
    short = {row.run: cut_short(row, study) for row in candidates}
    ranked = [row for row in candidates if not short[row.run]]
    if ranked:
        for row in candidates:
            if short[row.run]:
                row.verdict = Verdict(row.state, "ok" if row.state == State.RUNNING else "bad",
                                      f"{short[row.run]}, {key} {format_metric(key, row.final(key))}; not ranked against "
                                      f"runs that trained to the end")
    else:
        ranked = candidates  # nothing complete yet: rank what there is, and say so (below)
    if ranked:
        _rank(study, ranked, key, maximize)
        for row in ranked:
            if short[row.run]:
                row.verdict.reason += f" [{short[row.run]}]"
        if "lr" in study.swept:
            _near_chance_by_rate(study, ranked, maximize, lambda r: r.final(key))
    return {row.run: row.verdict for row in study.rows if row.verdict is not None}


def _rank(study: Study, ranked: list[ConfigResult], key: str, maximize: bool) -> None:
    """Verdicts of the runs that trained normally: by the rate's side within groups that tried two or
    more rates, by the plain rules (against the sweep's best) for the rest."""
    pick = max if maximize else min
    overall = pick(ranked, key=lambda r: r.final(key))
    excluded = [f"{r.label} {r.verdict.label}" for r in study.rows if r.verdict is not None]
    groups = _groups(ranked, study.swept) if "lr" in study.swept else [ranked]
    plain: list[ConfigResult] = []
    for group in groups:
        if len({_rate(row) for row in group} - {None}) < 2:
            plain += group
            continue
        best = pick(group, key=lambda r: r.final(key))
        for row in group:
            row.verdict = _ranked_verdict(row, best, overall, key, maximize, True, len(ranked), excluded, study)
    for row in plain:
        row.verdict = _ranked_verdict(row, overall, overall, key, maximize, False, len(ranked), excluded, study)


def _rate(row: ConfigResult) -> float | None:
    lr = row.config.get("lr")
    return float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool) else None


def _near_chance_by_rate(study: Study, ranked: list[ConfigResult], maximize: bool, score) -> None:
    """A near-chance run below its group's best rate that is still learning is ``too slow``
    (it has barely started); one above the best rate says so in its reason (too fast)."""
    bests = {}
    for group in _groups(ranked, study.swept):
        bests[_group_key(group[0], study.swept)] = (max if maximize else min)(group, key=score)
    for row in study.rows:
        if row.verdict is None or row.verdict.label != "near chance":
            continue
        best = bests.get(_group_key(row, study.swept))
        lr, best_lr = row.config.get("lr"), best.config.get("lr") if best else None
        if not isinstance(lr, (int, float)) or not isinstance(best_lr, (int, float)):
            continue
        learning = still_learning(row)
        if lr < best_lr and learning:
            key = study.metric.name
            gap = abs(best.final(key) - row.final(key))
            behind = f"{_gap_text(key, gap, best.final(key))} behind the best ({best.label}: {format_metric(key, best.final(key))})"
            row.verdict = Verdict("too slow", "slow", f"rate {format_value(lr)} below the best's "
                                  f"{format_value(best_lr)}, {behind}: {row.verdict.reason}, but still learning "
                                  f"({learning})")
        elif lr > best_lr:
            row.verdict = Verdict("near chance", "bad", f"{row.verdict.reason}; rate {format_value(lr)} above the "
                                  f"best's {format_value(best_lr)}: too fast to learn")


def _ranked_verdict(row: ConfigResult, best: ConfigResult, overall: ConfigResult, key: str, maximize: bool,
                    by_lr: bool, ranked: int, excluded: list[str], study: Study) -> Verdict:
    value, best_value = row.final(key), best.final(key)
    learning = still_learning(row)
    if row is best:
        if row is overall:
            reason = f"final {key} {format_metric(key, value)}, {'highest' if maximize else 'lowest'} of {ranked} configs"
            if excluded:
                reason += f" (not ranked: {', '.join(excluded)})"
            label = "best"
        else:
            reason = f"final {key} {format_metric(key, value)}, the best of its group; overall best {overall.label}: " \
                     f"{format_metric(key, overall.final(key))}"
            label = f"best for {_group_label(row, study)}"
        if learning:
            reason += f"; still learning at epoch {row.epochs_run} ({learning})"
        return Verdict(label, "good" if row is overall else "ok", reason)
    gap = (best_value - value) if maximize else (value - best_value)
    behind = f"{_gap_text(key, gap, best_value)} behind the best ({best.label}: {format_metric(key, best_value)})"
    drop = _drop_from_best(row)
    if _is_close(key, gap, best_value) and not drop:
        return Verdict("within 1 point of best" if is_accuracy(key) else "close to best", "ok", behind)
    lr, best_lr = row.config.get("lr"), best.config.get("lr")
    if by_lr and isinstance(lr, (int, float)) and isinstance(best_lr, (int, float)) and lr != best_lr:
        if lr < best_lr:
            if learning:
                return Verdict("too slow", "slow", f"rate {format_value(lr)} below the best's {format_value(best_lr)}, "
                               f"{behind}, still learning ({learning})")
        else:
            if drop:
                return Verdict("unstable", "bad", f"rate {format_value(lr)} above the best's {format_value(best_lr)}: "
                               f"{drop}; {behind}")
            how = settled(row)
            if how:
                return Verdict("too fast", "bad", f"rate {format_value(lr)} above the best's {format_value(best_lr)}: "
                               f"{how}; {behind}")
            return Verdict("worse", "slow", f"rate {format_value(lr)} above the best's {format_value(best_lr)}, "
                           f"{behind}, {_trend(row, learning)}")
        if not drop:
            return Verdict("worse", "slow", f"rate {format_value(lr)} below the best's {format_value(best_lr)}, "
                           f"{behind}, {_trend(row, learning)}")
    if drop:
        return Verdict("unstable", "bad", f"{drop}; {behind}")
    if learning:
        return Verdict("too slow", "slow", f"{behind}, still learning ({learning})")
    return Verdict("worse", "slow", f"{behind}, {_trend(row, learning)}")


def _trend(row: ConfigResult, learning: str) -> str:
    """``still learning (...)``, ``no longer learning`` or, after one epoch, ``one epoch: no trend``."""
    if learning:
        return f"still learning ({learning})"
    return "no longer learning" if len(row.history) > 1 else "one epoch: no trend"


def still_learning(row: ConfigResult) -> str:
    """Why the run was still learning at its end (``val acc +0.45 points/epoch over epochs 2-5``), or ''."""
    epochs, accs = _tail(row, VAL_ACC)
    if len(accs) == 2:
        gain = accs[1] - accs[0]
        return f"val acc +{gain * 100:.2f} points in the last epoch" if gain >= MIN_GAIN else ""
    reasons = []
    if len(accs) >= 3:
        slope, stderr = _slope(accs)
        if slope > 0 and slope * (len(accs) - 1) >= MIN_GAIN and slope >= 2 * stderr:
            reasons.append(f"val acc +{slope * 100:.2f} points/epoch over epochs {epochs[0]}-{epochs[-1]}")
    epochs, losses = _tail(row, TRAIN_LOSS)
    if len(losses) >= 3 and all(b < a for a, b in zip(losses, losses[1:])) and losses[0] > 0:
        fall = (losses[0] - losses[-1]) / losses[0]
        if fall >= MIN_LOSS_FALL:
            reasons.append(f"train loss fell in each of epochs {epochs[1]}-{epochs[-1]}, -{fall:.0%} in all")
    return ", ".join(reasons)


def settled(row: ConfigResult) -> str:
    """How a run stopped gaining at its end — stalled, oscillating or below its peak — or ''."""
    epochs, accs = _tail(row, VAL_ACC)
    if len(accs) < 2:
        return ""
    best = row.best_val_acc
    if best is not None and accs[-1] < best - CLOSE_POINTS / 2:
        return f"val acc {accs[-1]:.2%} at epoch {epochs[-1]}, below its peak {best:.2%} (epoch {row.best_epoch})"
    steps = [b - a for a, b in zip(accs, accs[1:])]
    if any(s < 0 for s in steps) and any(s > 0 for s in steps):
        return f"val acc oscillates over epochs {epochs[0]}-{epochs[-1]} ({', '.join(f'{s * 100:+.2f}' for s in steps)} points)"
    if not still_learning(row):
        return f"val acc stalled over epochs {epochs[0]}-{epochs[-1]} ({(accs[-1] - accs[0]) * 100:+.2f} points)"
    return ""


def _tail(row: ConfigResult, key: str) -> tuple[list[int], list[float]]:
    """The last `WINDOW` finite values of ``key`` and their epochs (read from the end: a big
    sweep's page judges thousands of runs)."""
    from lrtrack.report.study import _number

    pairs = []
    for logged in reversed(row.history):
        value = _number(logged[key]) if key in logged else None
        if value is not None and math.isfinite(value):
            pairs.append((logged["epoch"], value))
            if len(pairs) == WINDOW:
                break
    pairs.reverse()
    return [e for e, _ in pairs], [v for _, v in pairs]


def _slope(values: list[float]) -> tuple[float, float]:
    """Least-squares slope per epoch and its standard error."""
    n = len(values)
    xs = range(n)
    x_mean, y_mean = (n - 1) / 2, sum(values) / n
    sxx = sum((x - x_mean) ** 2 for x in xs)
    slope = sum((x - x_mean) * (y - y_mean) for x, y in zip(xs, values)) / sxx
    residuals = [y - (y_mean + slope * (x - x_mean)) for x, y in zip(xs, values)]
    stderr = math.sqrt(sum(r * r for r in residuals) / (n - 2) / sxx) if n > 2 else 0.0
    return slope, stderr


def _groups(rows: list[ConfigResult], swept: list[str]) -> list[list[ConfigResult]]:
    """Runs that share every swept setting but ``lr``, in order of first appearance."""
    groups: dict[str, list[ConfigResult]] = {}
    for row in rows:
        groups.setdefault(_group_key(row, swept), []).append(row)
    return list(groups.values())


def _group_key(row: ConfigResult, swept: list[str]) -> str:
    return repr([format_value(row.config.get(k)) for k in swept if k != "lr"])


def _group_label(row: ConfigResult, study: Study) -> str:
    return " ".join(f"{k}={format_value(row.config.get(k))}" for k in study.swept if k != "lr")


def planned_epochs(row: ConfigResult, study: Study) -> int:
    """The epochs ``row`` was configured for: swept, else fixed, else `TrainConfig`'s default."""
    from lrtrack.config import TrainConfig

    value = {"epochs": TrainConfig.model_fields["epochs"].default, **study.fixed, **row.config}["epochs"]
    return int(value)


def cut_short(row: ConfigResult, study: Study) -> str:
    """``stopped after 1 of 20 epochs (cancelled)`` / ``running: epoch 3 of 20`` for a run that has fewer
    epochs than configured and did not finish or diverge; '' for a complete run."""
    planned = planned_epochs(row, study)
    if row.state in RAN_TO_END or row.epochs_run >= planned:
        return ""
    if row.state == State.RUNNING:
        return f"running: epoch {row.epochs_run} of {planned}"
    return f"stopped after {row.epochs_run} of {planned} epochs ({row.state})"


def _failure_verdict(row: ConfigResult, near_chance: float | None) -> Verdict | None:
    """diverged / failed / near chance, or None when the config trained normally."""
    epochs, losses = row.series(TRAIN_LOSS)  # only the epochs that logged a train loss
    bad = next((i for i, loss in enumerate(losses) if loss is None or not math.isfinite(loss) or loss > row.diverge_loss),
               None)
    if row.state == State.DIVERGED or bad is not None:
        if bad is None:
            return Verdict(State.DIVERGED, "bad", f"stopped as diverged after {row.epochs_run} epoch(s)")
        epoch, loss = epochs[bad], losses[bad]
        what = "became non-finite" if loss is None or not math.isfinite(loss) else f"reached {loss:.4g} (limit {row.diverge_loss:g})"
        return Verdict(State.DIVERGED, "bad", f"train loss {what} at epoch {epoch}")
    error = row.summary.get("error")  # a failed attempt's one-line error
    if not row.history:
        return Verdict(row.state, "bad", f"no epoch completed (state {row.state})" + (f": {error}" if error else ""))
    if row.state == State.FAILED and error:
        return Verdict(State.FAILED, "bad", f"failed after {row.epochs_run} epoch(s): {error}")
    acc = row.final(VAL_ACC)
    if acc is not None and near_chance is not None and acc <= near_chance:
        best = f"; best {row.best_val_acc:.2%}" if row.best_val_acc is not None else ""
        return Verdict("near chance", "bad",
                       f"final val acc {acc:.2%} <= {CHANCE_FACTOR:g} x chance ({near_chance:.0%}){best}")
    return None


def _drop_from_best(row: ConfigResult) -> str:
    """``val acc fell from 96.2% (epoch 2) to 91.0%`` when the run lost more than UNSTABLE_DROP."""
    final, best = row.final(VAL_ACC), row.best_val_acc
    if final is None or best is None or best - final <= UNSTABLE_DROP:
        return ""
    return f"val acc fell from {best:.2%} (epoch {row.best_epoch}) to {final:.2%} at epoch {row.epochs_run}"


def _is_close(key: str, gap: float, best: float) -> bool:
    return gap <= CLOSE_POINTS + 1e-12 if is_accuracy(key) else gap <= 0.05 * abs(best)


def _gap_text(key: str, gap: float, best: float) -> str:
    if is_accuracy(key):
        return f"{gap * 100:.2f} points"
    return f"{gap:.4g} ({gap / abs(best):.0%})" if best else f"{gap:.4g}"
