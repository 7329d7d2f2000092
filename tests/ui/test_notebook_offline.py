"""Notebook widgets render offline in JupyterLab: a real `jupyter lab` on a free loopback port (token, temp
dir), a notebook that shows a TraceViewer, run in Chromium with every off-machine request blocked; the
viewer must render and no request may leave the machine."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lab.traces import TraceStore
from test_dashboard_browser import ARGS, CHROMIUM, block_offsite, free_port

pytestmark = pytest.mark.ui
REPO = Path(__file__).resolve().parents[2]

CELLS = [
    "import panel as pn\nfrom lab.traces import TraceStore\nfrom widgets import TraceViewer\n"
    "pn.extension('tabulator', inline=True)",
    "store = TraceStore({store!r})\nTraceViewer(store, run_id={run!r}, live=False)",
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
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                                   ".jp-Toolbar-kernelStatus, .jp-KernelStatus", state="attached")
            page.locator(".jp-Notebook").click()
            for _ in range(2):
                page.keyboard.press("Shift+Enter")
                page.wait_for_timeout(500)
            header = page.locator(".jp-OutputArea .lab-run-header")
            try:
                expect(header).to_contain_text(run, timeout=120_000)
            except AssertionError:
                (REPO / "test-artifacts").mkdir(exist_ok=True)
                page.screenshot(path=str(REPO / "test-artifacts" / "jupyterlab-failed.png"))
                raise
            expect(page.locator(".jp-OutputArea .lab-steps")).to_contain_text("tool call")
            page.screenshot(path=str(tmp_path / "jupyterlab.png"))
            browser.close()
        assert offsite == [], f"requests left the machine: {offsite[:5]}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
