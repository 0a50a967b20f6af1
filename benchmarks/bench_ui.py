"""How fast `lrtrack ui` answers on big stores: one sweep of 10,000 runs x 20 epochs, and 500 sweeps.

The stores are generated directly (SQL inserts into lrtrack's tables through the store's
own schema), not trained: only the dashboard is measured. A real ``lrtrack ui`` process
serves them; each round times the sweep page's JSON (what the live page polls), its
HTML, the CSV export and the sweeps list, as a browser fetches them (``Accept-Encoding:
gzip``): once on a fresh dashboard (cold: nothing read yet; the process's imports are
done at start), and again right after as the page polls (with the ``ETag`` it was sent:
what each 2-second poll of an unchanged sweep costs).

``--reference DIR`` runs, in each round, a second fresh dashboard from another checkout
of lrtrack (``git worktree add DIR COMMIT``) on the same store, right after this one's,
and prints both and their ratio. ``--browser`` also times headless Chromium (the test
suite's, `tests/browser.py`, a new profile per round) from opening the sweep page to the first
frame with its results table, with the table and both curves charts, and with everything;
where that time went (`BREAKDOWN`); one poll; and the same milestones when the page is opened
again in the same browser (what its cache keeps).

    python benchmarks/bench_ui.py [--runs 10000] [--epochs 20] [--sweeps 500] [--rounds 3]
                                  [--reference DIR] [--browser]
"""

from __future__ import annotations

import math
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from _common import load_average, parser

SPEC = {
    "name": "bench-ui", "method": "grid", "metric": {"name": "val/acc", "goal": "maximize"},
    "parameters": {"lr": {"values": []}, "optimizer": {"values": ["sgd", "adam"]}},
    "fixed": {"dataset": "digits", "model": "fcn", "epochs": 20},
}


def generate(url: str, runs: int, epochs: int, sweeps: int) -> str:
    """Fill the store at ``url``: one sweep of ``runs`` runs with ``epochs`` epochs each, plus
    ``sweeps - 1`` small sweeps. Returns the big sweep's id."""
    from sqlalchemy import insert

    from lrtrack.store import _tables, open_store

    rng = random.Random(0)
    lrs = sorted({round(10 ** rng.uniform(-5, -0.5), 8) for _ in range(runs)})[: runs // 2] or [0.01]
    spec = {**SPEC, "parameters": {**SPEC["parameters"], "lr": {"values": lrs}}}
    with open_store(url) as store:
        big = store.create_sweep(name="bench-ui", backend="local", spec=spec, wandb_config=spec, project="lrtrack",
                                 entity=None)
        for k in range(sweeps - 1):
            store.create_sweep(name=f"small-{k}", backend="local", spec=SPEC, wandb_config=SPEC, project="lrtrack",
                               entity=None)
        tables = _tables().tables
        now = time.time()
        with store._engine.begin() as conn:  # bulk inserts: a benchmark fixture, not an API
            for number in range(1, runs + 1):
                lr, optimizer = lrs[(number - 1) % len(lrs)], ("sgd", "adam")[number % 2]
                run_id = conn.execute(insert(tables["lrtrack_runs"]).values(
                    sweep_id=big.id, number=number, config={"lr": lr, "optimizer": optimizer, **SPEC["fixed"]},
                    state="finished")).inserted_primary_key[0]
                history = []
                acc = 0.1
                for epoch in range(1, epochs + 1):
                    acc = min(0.99, acc + (1 - acc) * min(0.5, lr * 20) * rng.uniform(0.5, 1))
                    history.append({"epoch": epoch, "train/loss": -math.log(max(acc, 1e-3)), "train/acc": acc,
                                    "val/loss": -math.log(max(acc * 0.98, 1e-3)), "val/acc": acc * 0.98, "lr": lr})
                summary = {**history[-1], "state": "finished", "epochs_run": epochs, "num_classes": 10,
                           "best/val_acc": history[-1]["val/acc"], "best/epoch": epochs}
                attempt_id = conn.execute(insert(tables["lrtrack_attempts"]).values(
                    run_id=run_id, number=1, state="finished", worker="bench", wandb_run_id=f"r{number:07d}",
                    started_at=now, heartbeat_at=now, ended_at=now, summary=summary)).inserted_primary_key[0]
                conn.execute(insert(tables["lrtrack_epochs"]),
                             [{"attempt_id": attempt_id, "epoch": row["epoch"], "metrics": row} for row in history])
    return big.id


def fetch(url: str, tag: str | None = None) -> tuple[float, int, str | None]:
    """Seconds to fetch ``url`` as the browser does (gzip; ``If-None-Match`` when it holds ``tag``),
    the bytes that came, and the answer's ``ETag``."""
    headers = {"Accept-Encoding": "gzip", **({"If-None-Match": tag} if tag else {})}
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=300) as response:
            size = len(response.read())
            return time.perf_counter() - start, size, response.headers.get("ETag")
    except urllib.error.HTTPError as answer:  # 304: unchanged
        if answer.code != 304:
            raise
        return time.perf_counter() - start, 0, tag


class Dashboard:
    """A real ``lrtrack ui`` process on a free loopback port (lrtrack imported from ``checkout``,
    default this one); ``base`` is its URL."""

    def __init__(self, store_url: str, checkout: str | None = None) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        checkout = checkout or str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": checkout}  # and run from it: `python -m` puts the working folder first
        self.proc = subprocess.Popen([sys.executable, "-m", "lrtrack", "ui", "--store", store_url, "--port", str(port)],
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=checkout)
        while "serving" not in (self.proc.stdout.readline() or "serving"):
            pass
        self.base = f"http://127.0.0.1:{port}/"
        for _ in range(300):
            try:
                fetch(self.base)
                return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"lrtrack ui did not answer at {self.base}")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


#: Installed in the page before its own scripts (Chromium's ``Page.addScriptToEvaluateOnNewDocument``), on
#: both sides alike: marks (ms since the page was opened) when the data's JSON is read and parsed, when
#: plotly.js has run, each chart's first ``Plotly.react`` (and its ms), and, checked at every frame, the
#: first frame with the results table, with both curves charts, and with everything (parallel coordinates too).
INSTRUMENT = r"""
window.__marks = {};
const mark = k => { if (!(k in __marks)) __marks[k] = performance.now(); };
const json = Response.prototype.json;
Response.prototype.json = async function () {
  if (!/\/api\/sweeps\/[^/]+$/.test(this.url)) return json.call(this);
  const text = await this.text(); mark("data read"); const v = JSON.parse(text); mark("data parsed"); return v; };
let P;
Object.defineProperty(window, "Plotly", {configurable: true, get() { return P; }, set(v) { mark("plotly.js run"); P = v;
  const react = v.react; v.react = function (id, ...rest) { const t = performance.now(), r = react.call(this, id, ...rest);
    if (!(id + " drawn" in __marks)) { __marks[id + " drawn"] = performance.now(); __marks[id + " react ms"] = __marks[id + " drawn"] - t; }
    return r; }; }});
(function frame() {
  const drawn = id => !!(document.getElementById(id) || {}).data, table = document.querySelector("#results tbody tr");
  if (table) mark("table on screen");
  if (table && drawn("loss") && drawn("acc")) mark("table + curves on screen");
  if (table && drawn("loss") && drawn("acc") && drawn("parcoords")) mark("all on screen");
  else requestAnimationFrame(frame);
})();
"""
#: The marks, with the page's navigation and resource timings (plotly.js and the data: when asked, first byte, last byte).
COLLECT = r"""
const n = performance.getEntriesByType("navigation")[0], out = {"HTML received": n.responseEnd,
  "DOMContentLoaded": n.domContentLoadedEventEnd};
for (const r of performance.getEntriesByType("resource")) {
  const name = /plotly/.test(r.name) ? "plotly.js" : /\/api\/sweeps\/[^/]+$/.test(r.name) ? "data" : null;
  if (name && !(name + " asked" in out)) { out[name + " asked"] = r.fetchStart; out[name + " first byte"] = r.responseStart;
    out[name + " received"] = r.responseEnd; }
}
return Object.assign(out, window.__marks);
"""
#: The milestones printed for each side; the breakdown (`BREAKDOWN`) is printed under them.
MILESTONES = ("table on screen", "table + curves on screen", "all on screen")
BREAKDOWN = ("HTML received", "plotly.js asked", "data asked", "plotly.js received", "plotly.js run", "DOMContentLoaded",
             "data first byte", "data received", "data parsed", "loss drawn", "acc drawn", "parcoords drawn",
             "loss react ms", "acc react ms", "parcoords react ms")
#: Runs the page's own poll once (`refresh` in sweep.html) and answers its milliseconds.
POLL = "const done = arguments[0], t = performance.now(); refresh().then(() => done(performance.now() - t));"


def browser_times(base: str, sweep_id: str) -> dict[str, float]:
    """Headless Chromium, a new profile: the page's milestones and breakdown (ms since it was opened) on
    a first view, one poll's ms, and the milestones of a later view (the page opened again in the same
    browser: what its cache keeps, plotly.js included)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from browser import chromium

    def view(page) -> dict[str, float]:
        page.get(f"{base}sweeps/{sweep_id}")
        deadline = time.monotonic() + 300
        while not page.execute_script("return 'all on screen' in window.__marks") and time.monotonic() < deadline:
            time.sleep(0.02)
        return page.execute_script(COLLECT)

    with chromium() as page:
        page.set_script_timeout(300)
        page.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": INSTRUMENT})
        first = view(page)
        first["one poll"] = page.execute_async_script(POLL)
        later = view(page)
        return {**first, **{f"later view: {k}": later[k] for k in MILESTONES}}


def measure(url: str, pages: dict[str, str], sweep_id: str, checkout: str | None, browser: bool,
            into: dict[str, dict[str, list]]) -> None:
    """One fresh dashboard: each page's first answer and the next poll, appended to ``into``."""
    ui = Dashboard(url, checkout)
    try:
        for name, path in pages.items():
            seconds, size, tag = fetch(ui.base + path)
            into.setdefault(name, {"first": [], "next": [], "bytes": [], "next bytes": []})
            into[name]["first"].append(seconds)
            into[name]["bytes"].append(size)
            seconds, size, _ = fetch(ui.base + path, tag)  # the live page's next poll of an unchanged sweep
            into[name]["next"].append(seconds)
            into[name]["next bytes"].append(size)
    finally:
        ui.close()
    if browser:
        ui = Dashboard(url, checkout)  # fresh again: the browser's first view is a cold one
        try:
            marks = browser_times(ui.base, sweep_id)
        finally:
            ui.close()
        for name, ms in marks.items():
            into.setdefault("browser", {}).setdefault(name, []).append(ms / 1000)


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--sweeps", type=int, default=500)
    p.add_argument("--store", help="Store URL (default: a new SQLite file)")
    p.add_argument("--reference", metavar="DIR", help="Another lrtrack checkout to compare with, round by round")
    p.add_argument("--browser", action="store_true", help="Also time headless Chromium drawing the sweep page")
    args = p.parse_args()
    if args.quick:
        args.runs, args.sweeps, args.rounds = 1000, 50, 2
    args.rounds = args.rounds or 3
    scratch = None if args.store else tempfile.TemporaryDirectory(prefix="bench-ui-")  # removed at the end
    url = args.store or f"sqlite:///{scratch.name}/store.db"
    start = time.perf_counter()
    sweep_id = generate(url, args.runs, args.epochs, args.sweeps)
    print(f"generated {args.runs:,} runs x {args.epochs} epochs and {args.sweeps} sweeps in "
          f"{time.perf_counter() - start:.1f} s")
    pages = {"sweep page data (/api/sweeps/ID)": f"api/sweeps/{sweep_id}", "sweep page HTML": f"sweeps/{sweep_id}",
             "CSV export": f"sweeps/{sweep_id}/results.csv", f"sweeps page data ({args.sweeps} sweeps)": "api/sweeps"}
    sides = {"this checkout": None, **({f"reference {args.reference}": args.reference} if args.reference else {})}
    times: dict[str, dict[str, dict[str, list]]] = {side: {} for side in sides}
    loads = []
    for _ in range(args.rounds):  # fresh dashboards each round, the sides one after the other: their first answers are cold
        for side, checkout in sides.items():
            loads.append(load_average())
            measure(url, pages, sweep_id, checkout, args.browser, times[side])
    print(f"load average {min(loads):.1f}-{max(loads):.1f}; median of {args.rounds} fresh dashboards per side "
          f"(first request, then the page's next poll of the unchanged sweep; bytes as sent, gzipped where asked):")
    median = statistics.median
    browser = {side: times[side].pop("browser", {}) for side in sides}
    for name in times["this checkout"]:
        for side in sides:
            t = times[side][name]
            sizes = f"{median(t['bytes']) / 1e6:6.2f} MB / {median(t['next bytes']) / 1e6:5.2f} MB" if t["bytes"] else ""
            print(f"  {name:40s} {side:28s} first {median(t['first']):6.2f} s   next {median(t['next']):6.2f} s   {sizes}")
        if args.reference:
            mine, other = times["this checkout"][name], times[f"reference {args.reference}"][name]
            print(f"  {'':40s} {'ratio (this / reference)':28s} first {median(mine['first']) / median(other['first']):6.2f}x"
                  f"  next {median(mine['next']) / max(median(other['next']), 1e-9):6.2f}x")
    if args.browser:
        print(f"headless Chromium, the sweep page: seconds since it was opened (a new browser profile, a fresh dashboard), "
              f"median of {args.rounds}:")
        print(f"  {'':40s}" + "".join(f"{side[:22]:>24s}" for side in sides) + ("   ratio" if args.reference else ""))
        names = [*MILESTONES, "one poll", *(f"later view: {k}" for k in MILESTONES), "breakdown:", *BREAKDOWN]
        for name in names:
            values = [median(browser[side][name]) if browser[side].get(name) else None for side in sides]
            cells = "".join(f"{'':>24s}" if v is None else f"{v:24.2f}" for v in values)
            timed = args.reference and name not in ("breakdown:", *BREAKDOWN) and None not in values and values[1] > 0
            ratio = f"   {values[0] / values[1]:.2f}x" if timed else ""
            print(f"  {name:40s}{cells}{ratio}")
    if scratch is not None:
        scratch.cleanup()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
