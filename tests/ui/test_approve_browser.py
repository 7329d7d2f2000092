"""Answering a pending tool-call approval from the dashboard in a real Chromium: a ReAct run waits at its
tool call; the trace view shows the call, Approve continues the run on the server and the view follows it
to the end (its own tiny store and server, so the main browser module stays as fast as it was)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_dashboard_browser import CHROMIUM, _open, free_port, open_dashboard, start_serve

from lab.agents import AWAITING_APPROVAL, ReActAgent
from lab.models import ScriptedModel, ToolCall
from lab.tasks import get_task
from lab.tools.registry import get_tools
from lab.traces import TraceStore

pytestmark = pytest.mark.ui


def test_approve_a_pending_call_and_watch_the_run_finish(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    db = tmp_path / "traces.db"
    store = TraceStore(db)
    task = get_task("chem-tools/mw-aspirin")
    agent = ReActAgent(ScriptedModel([ToolCall("", "molecular_weight", {"molecule": "aspirin"})]),
                       get_tools(["molecular_weight"]), approval=True)
    res = agent.start(store, task.instructions, task=task, seed=5).run()
    assert res.status == AWAITING_APPROVAL
    replies = tmp_path / "replies.yaml"
    replies.write_text(yaml.safe_dump([{"tool_calls": [{"name": "submit", "arguments": {"answer": "180.16"}}]}]))

    port = free_port()
    proc = start_serve(db, port)
    offsite: list[str] = []
    console: list[str] = []
    try:
        with sync_playwright() as pw:
            browser, page = open_dashboard(pw, port, offsite, console)
            _open(page, res.run_id)
            pending = page.locator(".lab-pending-call")
            expect(pending).to_contain_text("Waiting for approval")
            expect(pending).to_contain_text("molecular_weight")
            box = page.get_by_role("textbox", name="continue with")
            box.fill(f"scripted:{replies}")
            box.press("Enter")
            page.get_by_role("button", name="Approve").click()
            header = page.locator(".lab-run-header")
            expect(header).to_contain_text("stop: done · submitted")
            expect(header).to_contain_text("180.16")
            expect(page.locator(".lab-steps")).to_contain_text("180.15")  # the approved call's result
            expect(page.get_by_text(f"Run {res.run_id} done (submitted).")).to_be_visible()
            assert page.locator(".lab-pending-call").count() == 0
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert store.get_run(res.run_id)["status"] == "done"
    assert store.query("SELECT value FROM scores WHERE run_id=? AND final=1", (res.run_id,))[0][0] == 1.0
    assert not offsite and not console, (offsite, console)
    store.close()
