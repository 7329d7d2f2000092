"""Approvals from outside Python: `lab runs list` shows runs waiting, `lab approve` answers and continues them."""

from __future__ import annotations

import json

import pytest
import yaml

from lab.agents import AWAITING_APPROVAL, ReActAgent
from lab.models import ScriptedModel, ToolCall
from lab.tasks import get_task
from lab.tools.registry import get_tools
from tests.traces.conftest import run_lab_process


def waiting_run(store):
    task = get_task("chem-tools/mw-aspirin")
    model = ScriptedModel([ToolCall("", "molecular_weight", {"molecule": "aspirin"})])
    agent = ReActAgent(model, get_tools(["molecular_weight"]), approval=True)
    run = agent.start(store, task.instructions, task=task, seed=3)
    res = run.run()
    assert res.status == AWAITING_APPROVAL
    return run.run_id


@pytest.mark.parametrize("answer,observed,score", [
    ([], "180.15", 1.0),
    (["--edit", '{"molecule": "CCO"}'], "46.0", 0.0),
    (["--reject", "look it up yourself"], "look it up yourself", 0.0),
])
def test_lab_approve_continues_the_run(store, tmp_path, answer, observed, score):
    run_id = waiting_run(store)
    db = str(store.path)
    listed = run_lab_process("runs", "list", "--json", "--store", db)
    assert listed.returncode == 0, listed.stderr
    (row,) = [json.loads(x) for x in listed.stdout.splitlines()]
    assert row["status"] == "awaiting_approval"

    replies = tmp_path / "replies.yaml"
    final = "180.16" if not answer else "46.07"
    replies.write_text(yaml.safe_dump([{"tool_calls": [{"name": "submit", "arguments": {"answer": final}}]}]))
    r = run_lab_process("approve", run_id, *answer, "--model", f"scripted:{replies}", "--store", db)
    assert r.returncode == 0, r.stderr
    assert f"run {run_id}: done (submitted)" in r.stdout

    results = store.events(run_id, kinds=["tool_result"])
    assert observed in results[0].attrs["content"]
    assert store.get_run(run_id)["status"] == "done"
    finals = store.query("SELECT scorer, value FROM scores WHERE run_id=? AND final=1", (run_id,))
    assert finals and finals[0][1] == score
    again = run_lab_process("runs", "list", "--json", "--store", db)
    assert json.loads(again.stdout.splitlines()[0])["status"] == "done"


def test_lab_approve_refuses_a_run_not_waiting(store):
    from lab.traces import RunRecorder

    rec = RunRecorder.start(store, {"task": "t", "agent": "react"})
    rec.finish()
    r = run_lab_process("approve", rec.run_id, "--store", str(store.path))
    assert r.returncode != 0 and "not waiting for an approval" in r.stderr and "Traceback" not in r.stderr
    bad = run_lab_process("approve", rec.run_id, "--edit", "{oops", "--store", str(store.path))
    assert bad.returncode != 0 and "--edit: not JSON" in bad.stderr
