"""The dashboard in a real Chromium against `lab serve dashboard` on loopback, on a realistic store (imported
SUPER and METR runs with human experts, DERA and ReAct runs, a fork, expert and judge grades; see
fixture_store.py). Every request that leaves the machine is blocked and fails the suite; console warnings and
errors from our code fail it too. One server and one page for the module; tests run in order.
``LAB_UPDATE_SCREENSHOTS=1`` copies the screenshots into docs/screenshots for the README."""

from __future__ import annotations

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
from fixture_store import build

from lab.cli.serve import dashboard_url
from lab.stats import agreement, majority, ratings_table
from lab.traces import RunRecorder, Score, TraceStore, schema
from widgets.grading import item_text

pytestmark = pytest.mark.ui
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
#: Console messages of libraries we use, not of our code (Panel's MultiChoice wraps Choices.js).
LIBRARY_NOISE = ("allowHTML will default to false",)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(store: Path, port: int) -> subprocess.Popen:
    """`lab serve dashboard` on loopback; returns once the page answers."""
    proc = subprocess.Popen([sys.executable, "-m", "lab.cli.main", "serve", "dashboard", "--store", str(store),
                             "--port", str(port)], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(240):
        try:
            urllib.request.urlopen(dashboard_url(port, "127.0.0.1"), timeout=2)
            return proc
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"lab serve exited with {proc.returncode}")
            time.sleep(0.5)
    proc.kill()
    pytest.fail("lab serve did not answer within 120 s")


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def block_offsite(page, offsite: list[str]) -> None:
    """Abort (and record) every request to anything but this machine."""
    def route(r):
        host = re.match(r"^[a-z]+://([^/:]+)", r.request.url)
        if host and host.group(1) not in ("127.0.0.1", "localhost"):
            offsite.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    page.route("**/*", route)


def open_dashboard(pw, port: int, offsite: list[str], console: list[str], tag=lambda: ""):
    """A Chromium page on `lab serve dashboard` at ``port``, once its runs table shows: requests off this machine
    blocked into ``offsite``; warnings and errors from our code into ``console`` (each prefixed by ``tag()``).
    Returns (browser, page)."""
    from playwright.sync_api import expect

    browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(30_000)
    expect.set_options(timeout=30_000)
    block_offsite(page, offsite)
    page.on("console", lambda m: m.type in ("warning", "error") and not any(
        n in m.text for n in LIBRARY_NOISE) and console.append(f"{tag()}{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"{tag()}pageerror: {e}"))
    page.goto(dashboard_url(port, "127.0.0.1"))
    page.wait_for_selector(".tabulator-row")
    return browser, page


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    return build(tmp_path_factory.mktemp("ui-store"))


@pytest.fixture(scope="module")
def ui(fx):
    """(page, store, offsite requests, console problems) against one server."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    proc = start_serve(fx.path, port)
    store = TraceStore(fx.path)
    offsite: list[str] = []
    console: list[str] = []
    try:
        with sync_playwright() as pw:
            browser, page = open_dashboard(pw, port, offsite, console, tag=lambda: f"[{STAGE[0]}] ")
            yield page, store, offsite, console
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        store.close()


STAGE = ["start"]


@pytest.fixture(autouse=True)
def _stage(request):
    STAGE[0] = request.node.name  # console messages say which test's actions caused them


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _tab(page, name: str) -> None:
    page.locator(".bk-tab").filter(has_text=re.compile(f"^{re.escape(name)}$")).click()


def _open(page, run_id: str) -> None:
    from playwright.sync_api import expect

    _tab(page, "Trace")
    box = page.locator(".lab-run-id input")
    box.fill(run_id)
    box.press("Enter")
    expect(page.locator(".lab-run-header")).to_contain_text(run_id)


def test_runs_table_summaries_frozen_id_and_row_click(ui, fx):
    from playwright.sync_api import expect

    page, store, _, _ = ui
    n = len(store.list_runs())
    expect(page.locator(".lab-runs-summary")).to_contain_text(f"{n} of {n} runs")
    summary = page.locator(".lab-agent-summary")
    expect(summary).to_contain_text("human experts")
    expect(summary).to_contain_text("dera/scripted-dera")
    headers = [h.strip() for h in page.locator(".lab-runs-table .tabulator-col-title").all_inner_texts()]
    assert "run_id" in headers and "score" in headers and "expert · correctness" in headers
    assert "checkpoints" in headers or not fx.super_runs
    assert page.locator('.lab-runs-table .tabulator-frozen[tabulator-field="run_id"]').count() > 1
    _shot(page, "runs")
    row = page.locator(".lab-runs-table .tabulator-row", has_text="syn-0003")  # a METR human expert run
    row.locator('.tabulator-cell[tabulator-field="task"]').click()
    header = page.locator(".lab-run-header")
    expect(header).to_contain_text("syn-0003")
    expect(header).to_contain_text("human expert")
    expect(header).to_contain_text("Asked")
    expect(header.locator(".lab-scores")).to_contain_text("rule")
    assert "0.00s working time" not in _text(header) and "working time" in _text(header)


def test_native_traces_read_as_people_read_them(ui, fx):
    from playwright.sync_api import expect

    page, store, _, _ = ui
    dera = fx.dera[0]
    _open(page, dera)
    header = page.locator(".lab-run-header")
    expect(header).to_contain_text("stop: done · final")
    expect(header).to_contain_text("Ceftriaxone")
    scores = header.locator(".lab-scores")
    for text in ("normalized_match", "expert", "alice", "judge:smollm2-judge", "human", "model", "rule"):
        expect(scores).to_contain_text(text)
    assert "0.00s working time" not in _text(header) or store.get_run(dera)["elapsed"] < 0.005
    steps = page.locator(".lab-steps")
    # the Decider's second turn is marked as the Decider's, after the Researcher spoke
    expect(steps.locator(".lab-cont").first).to_contain_text("decider (continued")
    # the model's input is collapsed next to its output
    call = steps.locator('.lab-step[data-kind="model_call"]').first
    assert call.locator("details").first.get_attribute("open") is None
    expect(call).to_contain_text("input (2 messages")
    page.locator(".lab-span-card .card-header, .lab-span-card button").first.click()
    tree = page.locator(".lab-span-tree")
    expect(tree).to_contain_text("span decider")
    expect(tree).to_contain_text("span researcher")
    _shot(page, "trace")

    _open(page, fx.sandbox_run)
    steps = page.locator(".lab-steps")
    expect(steps).to_contain_text("shell(command=")
    expect(steps).to_contain_text("PASSED 3 tests")
    assert "PASSED 3 tests" in _text(steps) and "\x1b" not in _text(steps)  # colour codes stripped
    expect(steps.locator(".lab-error").first).to_contain_text("ModuleNotFoundError")
    meta = steps.locator('.lab-step[data-kind="model_call"] .meta').first.inner_text()
    assert re.search(r"\d\d:\d\d:\d\d", meta) and "tok" in meta


def test_imported_runs_read_as_well(ui, fx):
    from playwright.sync_api import expect

    page, store, _, _ = ui
    if not fx.super_runs:
        pytest.skip("SUPER trajectories not found (set LAB_SHARED_DATA)")
    traced = next(r for r in fx.super_runs if store.events(r, kinds=["tool_call"]))
    _open(page, traced)
    header = page.locator(".lab-run-header")
    expect(header).to_contain_text("Asked")
    query = store.events(traced, kinds=["run_started"])[0].attrs["lab.super.query"]
    expect(header).to_contain_text(query.split("\n")[0][:60])
    expect(header.locator(".lab-scores")).to_contain_text("output_match")
    steps = page.locator(".lab-steps")
    expect(steps.locator(".note").first).to_be_visible()  # the agent's thought above its action
    assert "\x1b" not in _text(steps)
    _open(page, "syn-x0001")  # METR row: no steps beyond start, score and finish, but a full header
    expect(page.locator(".lab-run-header .lab-scores")).to_contain_text("score")


def test_live_follow_and_table_refresh(ui, fx):
    from playwright.sync_api import expect

    page, store, _, _ = ui
    rec = RunRecorder.start(store, {"task": "live/t1", "agent": "react", "model": "m", "prompt": "count to two"})
    _open(page, rec.run_id)
    expect(page.locator(".lab-trace-viewer .lab-notice").first).to_contain_text("still being written")
    rec.emit(*schema.agent_message(content="one, two"), agent="react")
    expect(page.locator(".lab-steps")).to_contain_text("one, two")
    rec.finish(answer="two", stop_reason="submitted")
    store.add_score(rec.run_id, Score("exact", 1.0, provenance="rule", source="exact"))  # after the finish
    expect(page.locator(".lab-run-header .lab-scores")).to_contain_text("exact")
    _tab(page, "Runs")
    n = len(store.list_runs())
    expect(page.locator(".lab-runs-summary")).to_contain_text(f"{n} of {n} runs")


def test_fork_appears_in_the_runs_table(ui, fx):
    from playwright.sync_api import expect

    page, store, _, _ = ui
    _open(page, fx.dera[1])
    model_box = page.get_by_role("textbox", name="model")
    model_box.fill(f"scripted:{fx.script}")
    model_box.press("Enter")
    page.get_by_role("button", name="Fork from step").click()
    expect(page.get_by_text(re.compile("Forked into run"))).to_be_visible()
    assert [r for r in store.list_runs() if r["parent_run_id"] == fx.dera[1]]
    _tab(page, "Runs")
    n = len(store.list_runs())
    expect(page.locator(".lab-runs-summary")).to_contain_text(f"{n} of {n} runs")


def _text(locator) -> str:
    """Text of a Panel component (its content lives in the host's shadow root)."""
    return locator.evaluate("e => e.shadowRoot ? Array.from(e.shadowRoot.children).filter("
                            "c => !['STYLE', 'LINK'].includes(c.tagName)).map(c => c.innerText).join('\\n')"
                            " : e.innerText")


def _shown_item(page) -> tuple[str, str]:
    task = _text(page.locator(".lab-grade-task")).strip()
    return task.removeprefix("Task.").strip(), _text(page.locator(".lab-grade-output")).strip()


def _check_stored(store, grader: str, shown: tuple[str, str], before: int) -> None:
    sf = store.scores_frame()
    mine = sf[(sf["source"] == grader) & (sf["scorer"] == "expert")]
    assert len(mine) == before + 2
    run = mine["run_id"].iloc[-1]
    prompt, output = item_text(store, run)
    assert " ".join(prompt.split())[:80] == " ".join(shown[0].split())[:80]
    assert " ".join(output.split()) == " ".join(shown[1].split()), (run, output, shown)


def _grade_shown(page, store, grader: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator(".lab-grade-output")).to_be_visible()
    page.wait_for_timeout(1500)  # the view settles after a grader, selection or mode change
    shown = _shown_item(page)
    before = int((store.scores_frame().query("source == @grader and scorer == 'expert'")).shape[0])
    for dim in ("correctness", "clarity"):
        page.locator(f".lab-grade-{dim}").get_by_role("button", name="4", exact=True).click()
    page.get_by_role("button", name="Submit grade").click()
    for _ in range(60):
        if store.scores_frame().query("source == @grader and scorer == 'expert'").shape[0] == before + 2:
            break
        time.sleep(0.25)
    notices = [_text(n) for n in page.locator(".lab-notice.alert-warning").all()]
    assert store.scores_frame().query("source == @grader and scorer == 'expert'").shape[0] == before + 2, notices
    _check_stored(store, grader, shown, before)


def _set_grader(page, name: str) -> None:
    from playwright.sync_api import expect

    box = page.get_by_role("textbox", name="grader id")
    box.fill(name)
    box.press("Enter")
    expect(page.locator(".lab-grade-progress")).to_contain_text(f"for {name})")  # redrawn for this grader


def test_the_item_graded_is_the_item_shown(ui, fx):
    from playwright.sync_api import expect

    page, store, _, _ = ui
    _tab(page, "Runs")
    chemists = [r for r in fx.react if r not in fx.no_output]  # two runs of one task: a pair to judge
    picks = [*chemists[:2], fx.dera[0], fx.no_output[0]]
    # select four runs through the table's checkboxes (filtered to the runs' loops to have them on one page)
    for loop in ("react", "dera"):
        page.locator(".lab-filter-loops .choices").click()
        page.keyboard.type(loop)
        page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    n = sum(r["agent"] in ("react", "dera") for r in store.list_runs())
    expect(page.locator(".lab-runs-summary")).to_contain_text(f"{n} of")
    expect(page.locator(".lab-runs-table .tabulator-row")).to_have_count(n)
    for rid in picks:
        try:
            page.locator(".lab-runs-table .tabulator-row", has_text=rid).locator("input[type=checkbox]").click()
        except Exception:
            _shot(page, "select-failed")
            raise
    expect(page.locator(".lab-runs-summary")).to_contain_text("4 selected")
    _tab(page, "Grade")
    expect(page.locator(".lab-grade-progress")).to_contain_text("1 selected run without an output left out")
    expect(page.locator(".lab-grade-progress")).to_contain_text("of 3")
    _set_grader(page, "tester")
    _grade_shown(page, store, "tester")
    _shot(page, "grading")
    # an error keeps the chosen grades; success clears the warning
    page.locator(".lab-grade-correctness").get_by_role("button", name="2", exact=True).click()
    page.get_by_role("button", name="Submit grade").click()
    expect(page.locator(".lab-notice.alert-warning")).to_contain_text("missing: clarity")
    assert "active" in (page.locator(".lab-grade-correctness").get_by_role(
        "button", name="2", exact=True).get_attribute("class") or "")
    _set_grader(page, "tester2")  # a new grader: new order, redrawn; the grade lands on what is shown
    expect(page.locator(".lab-notice.alert-warning")).to_have_count(0)
    _grade_shown(page, store, "tester2")
    expect(page.locator(".lab-notice.alert-warning")).to_have_count(0)
    # pairwise: no rubric left on screen; judgements stored on 'overall'
    page.locator(".lab-grade-mode").get_by_role("button", name="pairwise").click()
    expect(page.locator(".lab-pair-left")).to_be_visible()
    expect(page.locator(".lab-grade-submit")).to_have_count(0)
    page.wait_for_timeout(1500)
    left = _text(page.locator(".lab-pair-left-output"))
    page.get_by_role("button", name="Left is better").click()
    for _ in range(60):
        pref = store.scores_frame().query("source == 'tester2' and scorer == 'preference'")
        if len(pref):
            break
        time.sleep(0.25)
    assert set(pref["dimension"]) == {"overall"} and len(pref) == 2
    winner = pref[pref["value"] == 1.0]["run_id"].iloc[0]
    assert " ".join(item_text(store, winner)[1].split()) in " ".join(left.split())
    page.locator(".lab-grade-mode").get_by_role("button", name="rubric").click()
    expect(page.locator(".lab-grade-submit")).to_be_visible()
    _tab(page, "Runs")
    page.get_by_role("button", name="↻ reload").click()


def _expected_agreement(store: TraceStore, dimension: str):
    sf = store.scores_frame()
    grades = sf[(sf["scorer"] != "preference") & (sf["dimension"] == dimension) & sf["value"].notna()]
    judge = grades[grades["provenance"] == "model"].groupby("run_id")["value"].last()
    experts = majority(ratings_table(grades[grades["provenance"] == "human"], by="source", item="run_id",
                                     dimension=dimension, agg="last"))
    return agreement(judge, experts, join="inner", n_boot=500, seed=0)


def test_human_vs_ai_on_realistic_data(ui, fx):
    from playwright.sync_api import expect

    page, store, _, _ = ui
    _tab(page, "Human vs AI")
    chart = page.locator(".lab-budget-chart")
    chart.locator("canvas, svg").first.wait_for()
    budget = page.locator(".card", has_text="Best-of-k vs time budget")
    assert "mixes time limits" not in _text(budget) and "np.float64" not in _text(budget)
    expect(chart).to_contain_text("human")
    expect(chart).to_contain_text("@ 2h")
    table = page.locator(".lab-agreement-table")
    expect(table.locator(".tabulator-row").first).to_be_visible()
    dim = page.locator(".lab-hva-dimension select").input_value()
    assert page.locator(".lab-hva-scorer select").input_value() == "score"  # human and AI runs both have it
    expected = _expected_agreement(store, dim).measures
    shown = {}
    for r in table.locator(".tabulator-row").all():
        cell = {f: r.locator(f'.tabulator-cell[tabulator-field="{f}"]').inner_text().strip()
                for f in ("statistic", "estimate")}
        shown[cell["statistic"]] = float(cell["estimate"].replace(",", "")) if cell["estimate"] not in (
            "", "NaN", "-") else float("nan")
    assert set(shown) == set(expected.index)
    for name, est in shown.items():
        ref = expected.loc[name, "estimate"]
        assert (est != est and ref != ref) or abs(est - ref) <= 5e-4 + 1e-9, (name, est, ref)  # shown rounded
    _shot(page, "human_vs_ai")


def test_launcher_uses_number_inputs(ui):
    page, _, _, _ = ui
    _tab(page, "Launch")
    page.get_by_role("button", name="start").wait_for()
    assert page.locator(".noUi-target").count() == 0  # no sliders
    assert page.locator(".lab-launcher input").count() >= 4  # steps, tokens, seeds, concurrency typed in


def test_nothing_offsite_and_a_quiet_console(ui):
    page, _, offsite, console = ui
    assert offsite == [], f"requests left the machine: {offsite[:5]}"
    assert console == [], "console warnings/errors:\n" + "\n".join(console[:10])
    if os.environ.get("LAB_UPDATE_SCREENSHOTS"):
        docs = REPO / "docs" / "screenshots"
        docs.mkdir(parents=True, exist_ok=True)
        for name in ("runs", "trace", "grading", "human_vs_ai"):
            shutil.copy(ARTIFACTS / f"{name}.png", docs / f"{name}.png")


def test_sigterm_leaves_nothing_listening(fx):
    port = free_port()
    proc = start_serve(fx.path, port)
    assert listening(port)
    proc.send_signal(signal.SIGTERM)  # to `lab serve` alone, as a service manager would
    proc.wait(timeout=30)
    for _ in range(20):
        if not listening(port):
            break
        time.sleep(0.25)
    assert not listening(port), f"something still listens on {port} after SIGTERM to lab serve"
