"""What the dashboard shows, as JSON-ready dicts: read from the store, judged by the report's code.

Every number and verdict comes from `lrtrack.report` (`load_study`, `results_columns`,
`cell`, the verdicts), so the dashboard's table is the report's table. Each function
reads the store in short read-only queries (`Store.run_summaries`, `Store.histories`,
`Store.list_sweeps`) and holds no lock between them, so a dashboard never gets in an
agent's way. `SweepReader` keeps, per dashboard process, what can no longer change
(ended attempts' per-epoch rows, an unchanged sweep's page) for the `KEPT_SWEEPS` sweeps
opened last, so a poll of a big sweep reads little.
"""

from __future__ import annotations

import contextlib
import gc
import math
import threading
import time
from collections import Counter, OrderedDict
from typing import TYPE_CHECKING, Any, Iterator

from lrtrack.formatting import format_value
from lrtrack.metrics import TRAIN_LOSS, VAL_ACC
from lrtrack.states import RUN_ENDS, RUN_STATES
from lrtrack.store import GROWING
from lrtrack.sweep import planned_runs, spec_of

if TYPE_CHECKING:
    from lrtrack.report.study import Study
    from lrtrack.store import RunRecord, Store, SweepRecord

#: At most this many points per curve; longer curves keep every k-th epoch and the last (and say so).
MAX_POINTS = 200
#: At most this many configurations are drawn as curves (the best by the sweep's metric; the page says so).
MAX_CURVES = 100
#: Parameter importance fits its random forest on at most this many results (a seeded sample beyond; the page says so).
MAX_IMPORTANCE_ROWS = 2000
#: Parallel coordinates draw at most this many runs (a seeded sample beyond; the chart says so).
MAX_PARCOORDS_LINES = 1000
#: A dashboard keeps what it read (ended attempts' rows, the page) for this many sweeps, the ones opened last.
KEPT_SWEEPS = 4


def load_study(store: Store, sweep_id: str) -> Study:
    """The report's view of a sweep, verdicts included: the one code path the table comes from."""
    return SweepReader(store).study(sweep_id)


def warm_up() -> None:
    """Import what the first sweep page needs (scikit-learn for importance, the report): seconds
    of imports paid at start, not by the first visitor."""
    import sklearn.ensemble  # noqa: F401

    import lrtrack.report.study  # noqa: F401


def sweeps_overview(store: Store) -> list[dict[str, Any]]:
    """One entry per sweep for the sweeps page: states, progress, best metric and its config, age.

    Two queries whatever the store holds: the sweeps, and every run with its attempts' summaries
    (`Store.run_summaries`, no per-epoch rows)."""
    now = time.time()
    runs: dict[str, list[RunRecord]] = {}
    for run in store.run_summaries():
        runs.setdefault(run.sweep_id, []).append(run)
    return [_overview(sweep, runs.get(sweep.id, []), now) for sweep in store.list_sweeps()]


def _overview(sweep: SweepRecord, runs: list[RunRecord], now: float) -> dict[str, Any]:
    spec = sweep.spec
    metric = (spec.get("metric") or {}).get("name", VAL_ACC)
    maximize = (spec.get("metric") or {}).get("goal", "maximize") == "maximize"
    counts = Counter(run.state for run in runs)
    planned = planned_runs(spec_of(sweep))  # the same count as sweep show's
    done = sum(counts[s] for s in RUN_ENDS)
    scored = [(run.summary.get(metric), run) for run in runs if _finite(run.summary.get(metric))]
    best = (max if maximize else min)(scored, key=lambda pair: pair[0]) if scored else None
    created = sweep.created_at.timestamp() if sweep.created_at else None
    return {
        "id": sweep.id,
        "name": sweep.name,
        "backend": sweep.backend,
        "method": spec.get("method", "grid"),
        "state": sweep.state,
        "counts": {state: counts.get(state, 0) for state in RUN_STATES},
        "runs": len(runs),
        "planned": planned,
        "progress": (done / planned) if planned else None,
        "metric": metric,
        "best": best[0] if best else None,
        "best_config": _label({k: best[1].config.get(k) for k in spec.get("parameters") or {}}) if best else "",
        "age_seconds": (now - created) if created else None,
    }


class SweepReader:
    """The dashboard's reads of one store, keeping what can no longer change between polls.

    A big sweep's cost is its per-epoch rows (10,000 runs x 20 epochs: 200,000 JSON rows).
    The reader reads the runs without them (`Store.run_summaries`), then the rows of only the
    attempt each run's report row shows (`lrtrack.report.study.shown_attempt`), and of those only the
    ones it does not hold yet: an attempt that has ended (not ``running`` or ``crashed``: a
    crashed attempt's agent may still be writing) keeps its rows, so they are read once per
    dashboard process. A sweep whose `Store.sweep_version` (one small aggregate read) is
    unchanged since the last poll is answered with the JSON computed then. Both are kept for
    the `KEPT_SWEEPS` sweeps opened last only, so a dashboard's memory stays bounded.

    It stands in for the store where the report's `load_study` reads one (`runs`, and the
    store's other methods through it), so the table still comes from the report's code.
    Requests are answered in a thread pool: one computation at a time, so polls of a page
    being computed wait for it and then get it from the cache instead of computing it again.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.RLock()  #: held while a sweep is read and its page computed
        #: sweep id -> attempt id -> per-epoch rows (sweeps in the order last opened)
        self._ended_rows: OrderedDict[str, dict[int, list[dict[str, Any]]]] = OrderedDict()
        self._pages: dict[str, tuple[tuple, str, bytes]] = {}  #: sweep id -> (its version then, tag, the page's JSON)
        self._runs: dict[str, list[RunRecord]] = {}  #: the runs read for the page being computed

    def runs(self, sweep_id: str) -> list[RunRecord]:
        """Like `Store.runs`, but only the attempt the report shows of each run has its history."""
        from lrtrack.report.study import shown_attempt

        with self._lock:
            if sweep_id in self._runs:
                return self._runs[sweep_id]
            ended = self._kept(sweep_id)
            runs = self._store.run_summaries(sweep_id)
            shown = [attempt for attempt in map(shown_attempt, runs) if attempt is not None]
            fresh = self._store.histories(a.id for a in shown if a.state in GROWING or a.id not in ended)
            for attempt in shown:
                if attempt.state in GROWING or attempt.id not in ended:
                    attempt.history = fresh.get(attempt.id, [])
                    if attempt.state not in GROWING:
                        ended[attempt.id] = attempt.history
                else:
                    attempt.history = ended[attempt.id]
            return runs

    def _kept(self, sweep_id: str) -> dict[int, list[dict[str, Any]]]:
        """The ended attempts' rows kept for ``sweep_id``; opening it forgets the sweep opened longest ago."""
        ended = self._ended_rows.setdefault(sweep_id, {})
        self._ended_rows.move_to_end(sweep_id)
        while len(self._ended_rows) > KEPT_SWEEPS:
            forgotten, _ = self._ended_rows.popitem(last=False)
            self._pages.pop(forgotten, None)
        return ended

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def study(self, sweep_id: str) -> Study:
        from lrtrack.report.study import load_study as report_study

        with self._lock, _gc_paused():
            return report_study(self, sweep_id)

    def detail_json(self, sweep_id: str) -> bytes:
        """`sweep_detail` as JSON, recomputed only when `Store.sweep_version` changed since the last call."""
        return self.detail_page(sweep_id)[1]

    def detail_page(self, sweep_id: str) -> tuple[str, bytes]:
        """`detail_json` and its entity tag (a hash of it): a poll that shows the tag it has is
        answered 304, without the page (`lrtrack.ui.app`)."""
        import hashlib
        import json

        with self._lock:
            cached = self._pages.get(sweep_id)
            version = self._store.sweep_version(sweep_id)  # read first: a change landing after it shows next poll
            if cached is None or cached[0] != version:
                sweep = self._store.get_sweep(sweep_id)
                with _gc_paused():
                    self._runs[sweep_id] = self.runs(sweep_id)  # load_study reads these, not a second copy
                    try:
                        body = json.dumps(self._detail(sweep_id, sweep), separators=(",", ":")).encode()
                    finally:
                        del self._runs[sweep_id]
                tag = 'W/"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'  # weak: sent gzipped or not
                self._pages[sweep_id] = cached = (version, tag, body)
            return cached[1], cached[2]

    def detail(self, sweep_id: str) -> dict[str, Any]:
        import json

        return json.loads(self.detail_json(sweep_id))

    def _detail(self, sweep_id: str, sweep: SweepRecord) -> dict[str, Any]:
        study = self.study(sweep_id)
        return {
            "sweep": {
                "id": study.sweep_id, "name": study.name, "description": study.description,
                "backend": study.backend, "state": sweep.state, "method": study.method,
                "metric": study.metric.name, "goal": study.metric.goal,
                "fixed": {k: format_value(v) for k, v in study.fixed.items()},
                "parameters": study.parameters, "swept": study.swept,
                "planned": planned_runs(spec_of(sweep)), "chance": study.chance,
                "read_at": time.time(),  # when this page's data was read from the store
            },
            "curves": curves(study),
            "table": results_table(study),
            "parcoords": parcoords(study),
            "importance": importance(study),
            "runs": [_run_entry(run) for run in self.runs(sweep_id)],
        }


def sweep_detail(store: Store, sweep_id: str) -> dict[str, Any]:
    """Everything the sweep page draws: settings, curves, the results table, parallel
    coordinates, parameter importance, and each run's attempts (its history: `run_history`).
    (The dashboard keeps one `SweepReader` and asks it, so that polls reuse what it read.)"""
    return SweepReader(store).detail(sweep_id)


def run_history(store: Store, sweep_id: str, number: int) -> list[dict[str, Any]]:
    """The per-epoch rows of run ``number``'s latest attempt (the page asks when a run is opened)."""
    run = next((run for run in store.run_summaries(sweep_id) if run.number == number), None)
    if run is None:
        from lrtrack.errors import UserError

        raise UserError(f"sweep {sweep_id} has no run {number}")
    rows = store.histories([run.latest.id]).get(run.latest.id, []) if run.latest else []
    return [{k: _json_number(v) if k != "epoch" else v for k, v in row.items()} for row in rows]


def results_table(study: Study) -> dict[str, Any]:
    """The report's results table: columns, and per row the texts shown (``texts``) and the raw
    values the page sorts by (``values``), one of each per column. Two lists, not an object per
    cell: a 10,000-run table is 5.9 MB of JSON this way, 7.6 MB with ``{text, value}`` per cell."""
    from lrtrack.report.tables import cell, results_columns

    columns = results_columns(study)
    header = [*study.swept, *(h for h, _ in columns), "verdict"]
    rows = []
    for row in study.rows:
        texts = [format_value(row.config.get(k)) for k in study.swept]
        values = [_json_number(row.config.get(k)) for k in study.swept]
        for _, key in columns:
            text, value = cell(row, key)
            texts.append(text)
            values.append(_json_number(value))
        verdict = row.verdict.label if row.verdict else ""
        texts.append(verdict)
        values.append(verdict)
        rows.append({"run": row.run, "label": row.label, "state": row.state, "verdict": verdict,
                     "reason": row.verdict.reason if row.verdict else "",
                     "metric": _json_number(row.final(study.metric.name)), "texts": texts, "values": values})
    return {"columns": header, "rows": rows}


def table_csv(study: Study) -> str:
    """The results table as CSV: exactly the texts the page's table shows."""
    import csv
    import io

    table = results_table(study)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table["columns"])
    writer.writerows(row["texts"] for row in table["rows"])
    return out.getvalue()


def curves(study: Study) -> dict[str, Any]:
    """Train loss and validation accuracy per epoch, one line per config (running ones too)."""
    key, maximize = study.metric.name, study.metric.goal == "maximize"
    rows = [row for row in study.rows if row.history]
    note = []
    if len(rows) > MAX_CURVES:
        rows = sorted(rows, key=lambda r: _rank(r.final(key), maximize))[:MAX_CURVES]
        note.append(f"showing the {MAX_CURVES} best of {len(study.rows)} configurations by {key}")
    lines, thinned = [], False
    for row in rows:
        epochs = [h.get("epoch") for h in row.history]
        keep = _thin(len(epochs))
        thinned = thinned or len(keep) < len(epochs)
        lines.append({
            "label": row.label, "state": row.state,
            "epoch": [epochs[i] for i in keep],
            TRAIN_LOSS: [_json_number(row.history[i].get(TRAIN_LOSS)) for i in keep],
            VAL_ACC: [_json_number(row.history[i].get(VAL_ACC)) for i in keep],
        })
    if thinned:
        note.append(f"curves longer than {MAX_POINTS} epochs show every k-th epoch and the last")
    return {"lines": lines, "note": "; ".join(note)}


def parcoords(study: Study) -> dict[str, Any]:
    """Parallel coordinates: the swept parameters (lr on a log10 axis) and the final metrics,
    one line per run with history; beyond `MAX_PARCOORDS_LINES`, a seeded sample (the note says so)."""
    dims = []
    rows = [row for row in study.rows if row.history]
    rows, note = _sample(rows, MAX_PARCOORDS_LINES, "runs drawn")
    for name in study.swept:
        values = [row.config.get(name) for row in rows]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            log = name == "lr" or (values and all(v > 0 for v in values) and max(values) / min(values) >= 100)
            dims.append({"label": f"log10 {name}" if log else name,
                         "values": [math.log10(v) if log else v for v in values]})
        else:
            levels = sorted({format_value(v) for v in values})
            dims.append({"label": name, "values": [levels.index(format_value(v)) for v in values],
                         "ticktext": levels, "tickvals": list(range(len(levels)))})
    for key in (TRAIN_LOSS, study.metric.name):
        dims.append({"label": f"final {key}", "values": [_json_number(row.final(key)) for row in rows]})
    return {"dimensions": dims, "color": [_json_number(row.final(study.metric.name)) for row in rows], "note": note}


def importance(study: Study) -> dict[str, Any]:
    """Per swept parameter: random-forest importance for the metric and its correlation with it
    (W&B's sweep page shows the same pair), fitted on at most `MAX_IMPORTANCE_ROWS` results (a
    seeded sample beyond; the note says so). No parameters below two swept ones or three results."""
    key = study.metric.name
    rows = [row for row in study.rows if _finite(row.final(key))]
    if len(study.swept) < 2 or len(rows) < 3:
        return {"parameters": [], "note": "shown for sweeps of two or more swept parameters with at least three results"}
    rows, note = _sample(rows, MAX_IMPORTANCE_ROWS, "results fitted")
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor

    columns = []
    for name in study.swept:
        values = [row.config.get(name) for row in rows]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            columns.append([math.log10(v) if name == "lr" and v > 0 else float(v) for v in values])
        else:
            levels = sorted({format_value(v) for v in values})
            columns.append([float(levels.index(format_value(v))) for v in values])
    x = np.array(columns, dtype=float).T
    y = np.array([row.final(key) for row in rows], dtype=float)
    forest = RandomForestRegressor(n_estimators=50, random_state=0).fit(x, y)
    result = []
    for i, name in enumerate(study.swept):
        column = x[:, i]
        corr = float(np.corrcoef(column, y)[0, 1]) if column.std() > 0 and y.std() > 0 else 0.0
        result.append({"parameter": name, "importance": float(forest.feature_importances_[i]), "correlation": corr})
    return {"parameters": sorted(result, key=lambda r: -r["importance"]), "note": note}


def _sample(rows: list, limit: int, what: str) -> tuple[list, str]:
    """At most ``limit`` of ``rows`` (a sample seeded with 0, in their order) and the note that
    says so (``a seeded sample of 1,000 of 10,000 runs drawn``), or all of them and ''."""
    if len(rows) <= limit:
        return rows, ""
    import random

    keep = sorted(random.Random(0).sample(range(len(rows)), limit))
    return [rows[i] for i in keep], f"a seeded sample of {limit:,} of {len(rows):,} {what}"


def _run_entry(run: RunRecord) -> dict[str, Any]:
    return {
        "run": run.number, "config": {k: format_value(v) for k, v in run.config.items()}, "state": run.state,
        "attempts": [{
            "attempt": a.number, "worker": a.worker, "state": a.state, "wandb_run_id": a.wandb_run_id,
            "started_at": a.started_at.isoformat() if a.started_at else None,
            "ended_at": a.ended_at.isoformat() if a.ended_at else None,
            "error": a.summary.get("error"),
        } for a in run.attempts],
    }


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a page is computed: building a big sweep's page allocates
    millions of objects, and the collections they set off walked all of them again and again (a
    quarter of a 10,000-run page's time). What it leaves behind is collected after, as usual.
    Nested (the page's study inside the page), only the outermost turns collection back on;
    computations run one at a time (`SweepReader`'s lock)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _thin(n: int) -> list[int]:
    if n <= MAX_POINTS:
        return list(range(n))
    step = math.ceil((n - 1) / (MAX_POINTS - 1))  # with the last index added: at most MAX_POINTS
    keep = list(range(0, n, step))
    return keep if keep[-1] == n - 1 else [*keep, n - 1]


def _label(config: dict[str, Any]) -> str:
    return " ".join(f"{k}={format_value(v)}" for k, v in config.items())


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _rank(value: float | None, maximize: bool) -> float:
    if not _finite(value):
        return math.inf
    return -value if maximize else value


def _json_number(value: Any) -> Any:
    """JSON has no NaN/inf: those become their names, as W&B writes them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
