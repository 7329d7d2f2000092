"""The dashboard in a real Chromium against `lab serve dashboard` on loopback: select a run, open its trace,
filter, fork a step with the scripted model, grade two items, and check the agreement numbers shown equal
lab.stats on the same data. Screenshots of the main views go to test-artifacts/."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lab.stats import agreement, majority, ratings_table
from lab.traces import TraceStore

pytestmark = pytest.mark.ui
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def study_store(tmp_path):
    """The sample study plus two real DERA runs (scripted model) that can be forked."""
    from lab.experiment import Experiment
    from lab.runner import Runner
    from widgets.sample import sample_study

    path = tmp_path / "traces.db"
    store = TraceStore(path)
    sample_study(store, tasks=2, seeds=1, experts=("alice", "bob"), events_per_run=20)
    script = tmp_path / "script.json"
    reply = {"answer": "ceftriaxone", "explanation": "blocks cell wall synthesis", "message": "agreed",
             "done": True, "final": True}  # one JSON reply serves every DERA role
    script.write_text(json.dumps({"replies": [json.dumps(reply)], "cycle": True}))
    exp = Experiment.from_dict({"name": "ui", "tasks": [{"suite": "medqa-open", "subset": "ci", "limit": 2}],
                                "loops": ["dera"], "models": [f"scripted:{script}"], "budgets": {"steps": 2},
                                "task_scoring": False})
    batch = Runner(store, progress=False).run(exp)
    dera = [o.run_id for o in batch.outcomes if o.status == "done"]
    assert len(dera) == 2
    yield store, path, script, dera
    store.close()


@pytest.fixture
def server(study_store):
    store, path, script, dera = study_store
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lab.cli.main", "serve", "dashboard", "--store", str(path),
                             "--port", str(port)], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/app"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"lab serve exited with {proc.returncode}")
                time.sleep(0.5)
        else:
            pytest.fail("lab serve did not answer within 60 s")
        yield url, store, script, dera
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the lab process and the panel server it started
        proc.wait(timeout=30)


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _tab(page, name: str) -> None:
    page.locator(".bk-tab").filter(has_text=re.compile(f"^{re.escape(name)}$")).click()


def _expected_agreement(store: TraceStore, dimension: str):
    sf = store.scores_frame()
    grades = sf[(sf["scorer"] != "preference") & (sf["dimension"] == dimension) & sf["value"].notna()]
    judge = grades[grades["provenance"] == "model"].groupby("run_id")["value"].last()
    experts = majority(ratings_table(grades[grades["provenance"] == "human"], by="source", item="run_id",
                                     dimension=dimension, agg="last"))
    return agreement(judge, experts, join="inner", n_boot=500, seed=0)


def test_dashboard_end_to_end(server):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import expect, sync_playwright

    url, store, script, dera = server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        expect.set_options(timeout=30_000)
        page.goto(url)
        page.wait_for_selector(".tabulator-row")
        n_runs = len(store.list_runs())
        expect(page.locator(".lab-runs-summary")).to_contain_text(f"{n_runs} of {n_runs} runs")
        _shot(page, "runs")

        # filter: AI runs only
        page.locator(".lab-filter-who").get_by_role("button", name="AI", exact=True).click()
        n_ai = sum(not r["is_human"] for r in store.list_runs())
        expect(page.locator(".lab-runs-summary")).to_contain_text(f"{n_ai} of {n_runs} runs")

        # select a DERA run and open its trace
        row = page.locator(".tabulator-row", has_text=dera[0])
        row.locator("input[type=checkbox]").click()
        expect(page.locator(".lab-runs-summary")).to_contain_text("1 selected")
        _tab(page, "Trace")
        expect(page.locator(".lab-run-header")).to_contain_text(dera[0])
        expect(page.locator(".lab-steps")).to_contain_text("ceftriaxone")
        _shot(page, "trace")

        # fork from step 0 with the scripted model
        model_box = page.get_by_role("textbox", name="model")
        model_box.fill(f"scripted:{script}")
        model_box.press("Enter")
        page.get_by_role("button", name="Fork from step").click()
        expect(page.get_by_text(re.compile("Forked into run"))).to_be_visible()
        forks = [r for r in store.list_runs() if r["parent_run_id"] == dera[0]]
        assert len(forks) == 1 and forks[0]["fork_step"] == 0

        # grade two items, blind
        _tab(page, "Grade")
        grader = page.get_by_role("textbox", name="grader id")
        grader.fill("tester")
        grader.press("Enter")
        for i in range(2):
            expect(page.locator(".lab-grade-progress")).to_contain_text(f"Item {i + 1} of")
            for dim in ("correctness", "clarity"):
                page.locator(f".lab-grade-{dim}").get_by_role("button", name="4", exact=True).click()
            if i == 0:
                _shot(page, "grading")
            page.get_by_role("button", name="Submit grade").click()
        expect(page.locator(".lab-grade-progress")).to_contain_text("Item 3 of")
        mine = store.scores_frame().query("source == 'tester'")
        assert len(mine) == 4 and set(mine["provenance"]) == {"human"} and set(mine["value"]) == {4.0}

        # agreement shown == lab.stats on the same data
        _tab(page, "Human vs AI")
        table = page.locator(".lab-agreement-table")
        expect(table.locator(".tabulator-row").first).to_be_visible()
        expected = _expected_agreement(store, "clarity").measures
        shown = {}
        for r in table.locator(".tabulator-row").all():
            cell = {f: r.locator(f'.tabulator-cell[tabulator-field="{f}"]').inner_text().strip()
                    for f in ("statistic", "estimate", "low", "high")}
            shown[cell["statistic"]] = [float(cell[f].replace(",", "")) if cell[f] not in ("", "NaN", "-")
                                        else float("nan") for f in ("estimate", "low", "high")]
        assert set(shown) == set(expected.index)
        for name, (est, lo, hi) in shown.items():
            want = expected.loc[name]
            for got, ref in ((est, want["estimate"]), (lo, want["low"]), (hi, want["high"])):
                assert (got != got and ref != ref) or abs(got - ref) < 5e-4, (name, got, ref)
        page.wait_for_selector(".lab-budget-chart canvas, .lab-budget-chart svg")
        _shot(page, "human_vs_ai")
        browser.close()
    if os.environ.get("LAB_UPDATE_SCREENSHOTS"):
        docs = REPO / "docs" / "screenshots"
        docs.mkdir(parents=True, exist_ok=True)
        for name in ("runs", "trace", "grading", "human_vs_ai"):
            shutil.copy(ARTIFACTS / f"{name}.png", docs / f"{name}.png")
