"""Notebook widgets render offline in JupyterLab: a real `jupyter lab` on a free loopback port (token, temp
dir), a notebook that shows a TraceViewer and a RunsTable (Tabulator, whose JavaScript Panel otherwise
fetches from a CDN), run in Chromium with every off-machine request blocked; both must render and no request
may leave the machine."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_dashboard_browser import ARGS, CHROMIUM, block_offsite, free_port

from lab.traces import TraceStore

pytestmark = pytest.mark.ui
REPO = Path(__file__).resolve().parents[2]

CELLS = [
    "import panel as pn\nfrom lab.traces import TraceStore\nfrom widgets import RunsTable, TraceViewer\n"
    "pn.extension('tabulator')  # as the notebooks do: importing widgets made resources inline",
    "store = TraceStore({store!r})\nTraceViewer(store, run_id={run!r}, live=False)",
    "RunsTable(store)",
]


def _notebook(path: Path, store: Path, run: str) -> None:
    cells = [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
              "source": c.format(store=str(store), run=run)} for c in CELLS]
    path.write_text(json.dumps({"cells": cells, "metadata": {"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}))


def test_trace_viewer_renders_in_jupyterlab_offline(tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.exists():
        pytest.skip("JupyterLab is not installed (the notebooks extra)")
    from playwright.sync_api import expect, sync_playwright

    from widgets.sample import sample_study

    store = TraceStore(tmp_path / "traces.db")
    run = sample_study(store, tasks=1, seeds=1, experts=("alice",), events_per_run=12)[0]
    store.close()
    _notebook(tmp_path / "viewer.ipynb", tmp_path / "traces.db", run)
    port, token = free_port(), secrets.token_hex(16)
    proc = subprocess.Popen(
        [str(jupyter), "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={tmp_path}", "--allow-root", "--ServerApp.disable_check_xsrf=True"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                assert proc.poll() is None, "jupyter lab exited"
                time.sleep(0.5)
        offsite: list[str] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(120_000)
            block_offsite(page, offsite)
            page.goto(f"{base}/lab/tree/viewer.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell")
            expect(page.locator(".jp-StatusBar-Widget", has_text="Idle").first).to_be_visible()  # kernel ready
            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name=re.compile("^Run All Cells")).click()
            header = page.locator(".jp-OutputArea .lab-run-header")
            try:
                expect(header).to_contain_text(run, timeout=120_000)
            except AssertionError:
                (REPO / "test-artifacts").mkdir(exist_ok=True)
                page.screenshot(path=str(REPO / "test-artifacts" / "jupyterlab-failed.png"))
                raise
            expect(page.locator(".jp-OutputArea .lab-steps")).to_contain_text("tool call")
            expect(page.locator(".jp-OutputArea .lab-runs-table .tabulator-row").first).to_be_visible()
            # reopened from its saved outputs (the kernel's live view gone), the widgets still render offline
            page.keyboard.press("Control+s")
            expect(page.locator(".jp-StatusBar-Widget", has_text="Saving completed").first).to_be_visible()
            page.reload()
            expect(page.locator(".jp-OutputArea .lab-run-header")).to_contain_text(run, timeout=120_000)
            browser.close()
        assert offsite == [], f"requests left the machine: {offsite[:5]}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_saved_notebook_outputs_carry_their_javascript(tmp_path):
    """An executed notebook's outputs embed Bokeh's and Panel's JavaScript instead of pointing at a CDN, so
    the saved notebook shows its widgets on a machine without internet (nbconvert executes it)."""
    jupyter = Path(sys.executable).parent / "jupyter"
    if not jupyter.exists():
        pytest.skip("JupyterLab is not installed (the notebooks extra)")
    from widgets.sample import sample_study

    store = TraceStore(tmp_path / "traces.db")
    run = sample_study(store, tasks=1, seeds=1, experts=("alice",), events_per_run=12)[0]
    store.close()
    _notebook(tmp_path / "viewer.ipynb", tmp_path / "traces.db", run)
    subprocess.run([str(jupyter), "nbconvert", "--to", "notebook", "--execute", "viewer.ipynb", "--output",
                    "done.ipynb"], cwd=tmp_path, check=True, capture_output=True, timeout=300,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    saved = (tmp_path / "done.ipynb").read_text()
    assert "cdn.bokeh.org" not in saved, "Bokeh's JavaScript is fetched from its CDN"
    assert "Bokeh" in saved and len(saved) > 1_000_000  # the library itself is in the outputs
