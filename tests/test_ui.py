"""``lrtrack ui`` end to end: a real dashboard process, real agents, real headless Chromium."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from browser import chromium
from clitools import (assert_one_line_error, create, lrtrack, process_state, show, spawn, sweep_spec, wait_for,
                      write_sweep_spec)

from lrtrack.ui.app import plotly_path


def write_ui_spec(path: Path, epochs: int) -> Path:
    """The dashboard's sweep: 2 learning rates x 2 optimizers, ``epochs`` epochs each."""
    return write_sweep_spec(path, "ui-live", {"lr": [0.05, 0.01], "optimizer": ["sgd", "adam"]},
                            model="fcn", epochs=epochs, train_size=300, test_size=100)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Dashboard:
    """A real ``lrtrack ui`` subprocess, up once it printed its URL."""

    def __init__(self, store: str, *args: str) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "lrtrack", "ui", "--store", store, "--port", str(self.port),
                                      *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise AssertionError(f"lrtrack ui exited: {self.proc.stderr.read()}")
            self.lines.append(line)
            if "serving store" in line:
                self.url = re.search(r"at (http://\S+)", line).group(1)
                self.base = f"http://127.0.0.1:{self.port}/"
                wait_for(self._listening, 30, "lrtrack ui to accept connections")
                return
        raise AssertionError("lrtrack ui printed no URL within 60 s")

    def _listening(self) -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def get(self, path: str, **headers) -> tuple[int, str]:
        request = urllib.request.Request(self.base + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def close(self) -> str:
        self.proc.terminate()
        out, err = self.proc.communicate(timeout=30)
        return "".join(self.lines) + out + err




def markdown_rows(markdown: str) -> list[list[str]]:
    """The results table of ``lrtrack report`` (Markdown), cell texts without emphasis."""
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    return [[cell.strip().strip("*") for cell in line.strip("|").split("|")] for line in lines]


@pytest.mark.chromium
def test_live_page_table_csv_and_pause_equal_the_cli(tmp_path, store_url):
    spec = write_ui_spec(tmp_path / "ui.yaml", 60)  # four runs
    sweep_id = create(spec, store_url)
    # The agent holds still twice (SIGSTOP), so that the page, however slow a loaded machine makes
    # it, sees a running curve before and after it grows, and pauses a sweep that is not over yet:
    # after its 5th epoch, and right after claiming its second run.
    agent = spawn("agent", sweep_id, "--store", store_url, "--offline", "--heartbeat-seconds", "1",
                  env={**os.environ, "LRTRACK_FAULT": "epoch@5:SIGSTOP,claim@2:SIGSTOP"})
    ui = Dashboard(store_url)
    try:
        with chromium() as page:
            page.get(f"{ui.url}sweeps/{sweep_id}")
            page.execute_script("window.notReloaded = true; window.confirm = () => true;"
                                "window.alerted = []; window.alert = text => window.alerted.push(text);")
            points = "return (document.getElementById('acc').data || []).map(t => t.x.length).reduce((a, b) => a + b, 0)"
            wait_for(lambda: process_state(agent.pid) == "T", 120, "the agent stopped after its 5th epoch")
            wait_for(lambda: page.execute_script(points) == 5, 120, "the running config's 5 epochs on the page")
            first = 5
            agent.send_signal(signal.SIGCONT)
            wait_for(lambda: process_state(agent.pid) == "T" and page.execute_script(points) > first, 120,
                     "the running curve to gain points without a reload (the agent stopped at its second claim)")
            assert page.execute_script("return window.notReloaded === true")

            page.find_element("id", "pause").click()  # the page's button, confirmed
            wait_for(lambda: show(sweep_id, store_url)["sweep"]["state"] == "paused", 90,
                     "the sweep paused in the store")  # the dashboard runs at nice +10: slow under load
            assert page.execute_script("return window.alerted") == []  # the POST was answered 200
            agent.send_signal(signal.SIGCONT)
            out, err = agent.communicate(timeout=300)  # finishes its run, then stops as with `lrtrack sweep pause`
            assert agent.returncode == 0, err
            assert "paused" in out

            page.refresh()
            wait_for(lambda: page.find_elements("css selector", "#results tbody tr"), 30, "the results table")
            # read in one script: the live poll may redraw the table between two WebDriver calls
            shown = page.execute_script("return [...document.querySelectorAll('#results tbody tr')]"
                                        ".map(tr => [...tr.querySelectorAll('td')].map(td => td.innerText.trim()))")
        status, api = ui.get(f"api/sweeps/{sweep_id}")
        assert status == 200
        table = json.loads(api)["table"]
        report = lrtrack("report", sweep_id, "--store", store_url)
        assert report.returncode == 0, report.stderr
        assert markdown_rows(report.stdout) == [table["columns"], *(r["texts"] for r in table["rows"])]
        assert shown == [r["texts"] for r in table["rows"]]
        status, csv_text = ui.get(f"sweeps/{sweep_id}/results.csv")
        assert status == 200
        assert [line.split(",") for line in csv_text.strip().splitlines()] == [table["columns"], *shown]
    finally:
        if agent.poll() is None:
            agent.kill()
        output = ui.close()
    password = re.search(r"://[^:/@]+:([^@]+)@", store_url)
    if password:  # PostgreSQL: the password never reaches a page, the API or the log
        for path in ("", f"sweeps/{sweep_id}", "api/sweeps"):
            assert password.group(1) not in ui_body(store_url, path)
        assert password.group(1) not in output + api + csv_text


def ui_body(store_url: str, path: str) -> str:
    ui = Dashboard(store_url)
    try:
        return ui.get(path)[1]
    finally:
        ui.close()


def test_off_loopback_every_request_needs_the_token_and_actions_need_csrf(tmp_path):
    store = f"sqlite:///{tmp_path}/store.db"
    sweep_id = create(write_ui_spec(tmp_path / "ui.yaml", 1), store)
    ui = Dashboard(store, "--host", "0.0.0.0")
    try:
        token = re.search(r"token=(\S+)", ui.url).group(1)
        for path in ("", f"sweeps/{sweep_id}", "api/sweeps", f"sweeps/{sweep_id}/results.csv", plotly_path()[1:]):
            assert ui.get(path)[0] == 401, path
            assert ui.get(path, Authorization="Bearer wrong-token-0123456789")[0] == 401, path
            assert ui.get(path, Authorization=f"Bearer {token}")[0] == 200, path
        status, page = ui.get(f"?token={token}")
        assert status == 200 and "Sweeps" in page
        post = urllib.request.Request(ui.base + f"api/sweeps/{sweep_id}/pause", method="POST",
                                      headers={"Authorization": f"Bearer {token}"})
        with pytest.raises(urllib.error.HTTPError) as refused:  # no CSRF token: refused, nothing changed
            urllib.request.urlopen(post, timeout=30)
        assert refused.value.code == 403
        assert show(sweep_id, store)["sweep"]["state"] == "running"
    finally:
        ui.close()


def test_bad_store_or_busy_port_is_one_line_and_exit_2(tmp_path):
    missing = lrtrack("ui", "--store", f"sqlite:///{tmp_path}/none.db", "--port", str(free_port()), timeout=60)
    assert_one_line_error(missing, "no store there")
    assert not (tmp_path / "none.db").exists()
    store = f"sqlite:///{tmp_path}/store.db"
    create(write_ui_spec(tmp_path / "ui.yaml", 1), store)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        proc = lrtrack("ui", "--store", store, "--port", str(busy.getsockname()[1]), timeout=60)
    assert_one_line_error(proc, "cannot listen")


def test_many_or_long_curves_are_limited_thinned_and_say_so_and_polls_see_new_epochs(store_url, monkeypatch):
    """The sweep page's data over a real store (no browser): with more configs than `MAX_CURVES`
    only the best are drawn, longer curves than `MAX_POINTS` keep every k-th epoch and the last,
    the note says both; an unchanged sweep is answered from the reader's cache, a new epoch is not."""
    from lrtrack.config import SweepSpec
    from lrtrack.store import open_store
    from lrtrack.sweep import propose
    from lrtrack.ui import data

    monkeypatch.setattr(data, "MAX_CURVES", 2)
    monkeypatch.setattr(data, "MAX_POINTS", 4)
    monkeypatch.setattr(data, "MAX_PARCOORDS_LINES", 2)
    spec = SweepSpec.model_validate(sweep_spec("long", {"lr": [0.1, 0.2, 0.3]}, epochs=9))
    with open_store(store_url) as store:
        sweep = store.create_sweep(name=spec.name, backend="local", spec=spec.model_dump(mode="json"),
                                   wandb_config=spec.to_wandb(), project=spec.project, entity=None)
        claims = [store.claim_run(sweep.id, "w", propose(sweep.wandb_config), grace_seconds=60) for _ in range(3)]
        for n, c in enumerate(claims):  # lr 0.1 ends at 0.5, lr 0.2 at 0.6, lr 0.3 at 0.7 (still running)
            for epoch in range(1, 10 if n < 2 else 9):
                store.log_epoch(c.attempt.id, {"epoch": epoch, "train/loss": 1 / epoch, "val/acc": 0.5 + n / 10 - (9 - epoch) / 100})
            if n < 2:
                store.finish_attempt(c.attempt.id, "finished", {"state": "finished", "epochs_run": 9})
        reader = data.SweepReader(store)
        detail = reader.detail(sweep.id)
        lines = detail["curves"]["lines"]
        assert [line["label"] for line in lines] == ["lr=0.3", "lr=0.2"]  # the best two by val/acc
        assert lines[0]["epoch"] == [1, 4, 7, 8] and lines[1]["epoch"] == [1, 4, 7, 9]  # every 3rd and the last
        assert detail["curves"]["note"] == ("showing the 2 best of 3 configurations by val/acc; curves longer than "
                                            "4 epochs show every k-th epoch and the last")
        assert detail["parcoords"]["note"] == "a seeded sample of 2 of 3 runs drawn"
        assert len(detail["parcoords"]["color"]) == 2 and all(len(d["values"]) == 2 for d in detail["parcoords"]["dimensions"])
        assert detail["table"] == data.results_table(data.load_study(store, sweep.id))  # the report's own table
        assert reader.detail_json(sweep.id) is reader.detail_json(sweep.id)  # unchanged: the page computed once
        store.log_epoch(claims[2].attempt.id, {"epoch": 9, "train/loss": 0.1, "val/acc": 0.7})
        assert reader.detail(sweep.id)["curves"]["lines"][0]["epoch"] == [1, 4, 7, 9]  # the new epoch is seen
        monkeypatch.setattr(data, "MAX_CURVES", 100)
        monkeypatch.setattr(data, "MAX_POINTS", 200)
        monkeypatch.setattr(data, "MAX_PARCOORDS_LINES", 1000)
        detail = data.sweep_detail(store, sweep.id)
        assert detail["curves"]["note"] == "" and detail["parcoords"]["note"] == ""
        assert len(detail["parcoords"]["color"]) == 3


def test_an_unchanged_sweep_page_is_answered_304_pages_are_gzipped_and_plotly_js_is_cached(tmp_path):
    """The page's poll sends the tag of what it drew: an unchanged sweep is answered 304 with no body,
    a new epoch with the new page; a browser's ``Accept-Encoding: gzip`` gets it compressed. plotly.js,
    at a URL naming plotly's version, is sent gzipped and may be cached for good."""
    import gzip
    from importlib import resources

    from lrtrack.config import SweepSpec
    from lrtrack.store import open_store
    from lrtrack.sweep import propose

    url = f"sqlite:///{tmp_path}/store.db"
    spec = SweepSpec.model_validate(sweep_spec("tags", {"lr": [0.1]}, epochs=3))
    with open_store(url) as store:
        sweep = store.create_sweep(name=spec.name, backend="local", spec=spec.model_dump(mode="json"),
                                   wandb_config=spec.to_wandb(), project=spec.project, entity=None)
        attempt = store.claim_run(sweep.id, "w", propose(sweep.wandb_config), grace_seconds=60).attempt
        store.log_epoch(attempt.id, {"epoch": 1, "train/loss": 1.0, "val/acc": 0.5})
        ui = Dashboard(url)
        try:
            def get(**headers):
                request = urllib.request.Request(ui.base + f"api/sweeps/{sweep.id}", headers=headers)
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        return response.status, response.headers, response.read()
                except urllib.error.HTTPError as exc:
                    return exc.code, exc.headers, exc.read()

            status, headers, body = get()
            tag = headers["ETag"]
            assert status == 200 and tag and json.loads(body)["table"]["rows"][0]["texts"][1] == "1"
            status, headers, body = get(**{"If-None-Match": tag})
            assert (status, body, headers["ETag"]) == (304, b"", tag)
            status, headers, zipped = get(**{"Accept-Encoding": "gzip"})
            assert status == 200 and headers["Content-Encoding"] == "gzip" and json.loads(gzip.decompress(zipped))
            store.log_epoch(attempt.id, {"epoch": 2, "train/loss": 0.5, "val/acc": 0.6})
            status, headers, body = get(**{"If-None-Match": tag})
            assert status == 200 and headers["ETag"] != tag and json.loads(body)["table"]["rows"][0]["texts"][1] == "2"

            assert plotly_path() in ui.get(f"sweeps/{sweep.id}")[1]
            request = urllib.request.Request(ui.base + plotly_path()[1:], headers={"Accept-Encoding": "gzip"})
            with urllib.request.urlopen(request, timeout=30) as response:
                headers, zipped = response.headers, response.read()
            assert headers["Content-Encoding"] == "gzip" and "immutable" in headers["Cache-Control"]
            served = Path(str(resources.files("plotly") / "package_data" / "plotly.min.js")).read_bytes()
            assert gzip.decompress(zipped) == served and len(zipped) < len(served) / 3
        finally:
            ui.close()


def test_the_reader_keeps_the_sweeps_opened_last_only_and_leaves_garbage_collection_on(store_url, monkeypatch):
    """With `KEPT_SWEEPS` = 1, opening a second sweep forgets the first's page (recomputed when it is
    opened again), while an unchanged sweep that is still kept is answered from the cache."""
    import gc

    from lrtrack.config import SweepSpec
    from lrtrack.store import open_store
    from lrtrack.sweep import propose
    from lrtrack.ui import data

    monkeypatch.setattr(data, "KEPT_SWEEPS", 1)
    spec = SweepSpec.model_validate(sweep_spec("kept", {"lr": [0.1, 0.2]}, epochs=2))
    with open_store(store_url) as store:
        sweeps = []
        for _ in range(2):
            sweep = store.create_sweep(name=spec.name, backend="local", spec=spec.model_dump(mode="json"),
                                       wandb_config=spec.to_wandb(), project=spec.project, entity=None)
            c = store.claim_run(sweep.id, "w", propose(sweep.wandb_config), grace_seconds=60)
            for epoch in (1, 2):
                store.log_epoch(c.attempt.id, {"epoch": epoch, "train/loss": 1 / epoch, "val/acc": 0.5})
            store.finish_attempt(c.attempt.id, "finished", {"state": "finished", "epochs_run": 2})
            sweeps.append(sweep.id)
        reader = data.SweepReader(store)
        first = reader.detail_json(sweeps[0])
        assert reader.detail_json(sweeps[0]) is first  # kept
        assert gc.isenabled()  # paused while the page was computed only
        second = reader.detail_json(sweeps[1])
        assert reader.detail_json(sweeps[1]) is second
        again = reader.detail_json(sweeps[0])  # forgotten when the second was opened: computed again
        assert again is not first and json.loads(again)["table"] == json.loads(first)["table"]
        assert reader.detail_json(sweeps[1]) is not second


def test_the_sweeps_page_counts_planned_runs_as_sweep_show_does(tmp_path):
    from lrtrack.config import load_spec
    from lrtrack.store import open_store
    from lrtrack.sweep import create_sweep, describe
    from lrtrack.ui.data import sweeps_overview

    hidden = {"distribution": "int_uniform", "min": 32, "max": 34}  # a grid axis without 'values'
    path = write_sweep_spec(tmp_path / "grid.yaml", "grid", {"lr": [0.1, 0.01], "hidden": hidden}, model="mlp2", epochs=1)
    with open_store(f"sqlite:///{tmp_path}/store.db") as store:
        record = create_sweep(load_spec(path), store, "local")
        (overview,) = sweeps_overview(store)
        assert overview["planned"] == describe(store, record.id)["sweep"]["progress"]["total"] == 6
