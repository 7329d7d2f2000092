"""The trace viewer shows a run's provenance and answers a pending tool-call approval (the run continues in
the background and the view follows it); the side-by-side view lists what differs in two runs' provenance."""

from __future__ import annotations

import json

import panel as pn
import pytest
import yaml

from lab.agents import AWAITING_APPROVAL, ReActAgent
from lab.models import Sampling, ScriptedModel, ToolCall
from lab.provenance import diff, of_run
from lab.tasks import get_task
from lab.tools.registry import get_tools
from widgets.trace_view import TraceDiff, TraceViewer

TASK = "chem-tools/mw-aspirin"


def _text(viewable) -> str:
    return "\n".join(str(o.object) for o in pn.panel(viewable).select(
        lambda o: isinstance(o, (pn.pane.Markdown, pn.pane.HTML, pn.pane.Alert))))


def _run(store, *, seed: int, name: str, temperature: float = 0.0, approval: bool = False) -> str:
    task = get_task(TASK)
    script = [ToolCall("", "molecular_weight", {"molecule": "aspirin"})]
    if not approval:
        script.append(ToolCall("", "submit", {"answer": "180.16"}))
    agent = ReActAgent(ScriptedModel(script, name=name), get_tools(["molecular_weight"]), approval=approval,
                       sampling=Sampling(temperature=temperature))
    res = agent.start(store, task.instructions, task=task, seed=seed).run()
    assert res.status == (AWAITING_APPROVAL if approval else "done")
    return res.run_id


def test_header_shows_provenance_collapsed(store):
    run_id = _run(store, seed=1, name="scripted-a")
    v = TraceViewer(store, run_id=run_id)
    card = pn.panel(v.header()).select(lambda o: isinstance(o, pn.Card) and o.title == "Provenance")
    assert len(card) == 1 and card[0].collapsed
    table = _text(card[0])
    prov = of_run(store, run_id)
    assert prov["seed"] == 1 and prov["model"]["name"] == "scripted-a"
    for key in ("lab.version", "python", "model.name", "task.sha256", "seed", "sampling.temperature"):
        assert f"<td>{key}</td>" in table
    assert prov["task"]["sha256"] in table and "scripted-a" in table


def test_header_says_when_no_provenance_was_recorded(store):
    run_id = store.create_run({"task": "imported"}, status="done")
    assert "no provenance recorded" in _text(TraceViewer(store, run_id=run_id).header())


def test_diff_view_lists_what_lab_runs_diff_lists(store):
    a = _run(store, seed=1, name="scripted-a")
    b = _run(store, seed=2, name="scripted-b", temperature=0.7)
    d = TraceDiff(store, run_a=a, run_b=b)
    view = pn.panel(d.view())
    (card,) = view.select(lambda o: isinstance(o, pn.Card))
    expected = diff(of_run(store, a), of_run(store, b))
    keys = {k for k, _, _ in expected}
    assert {"seed", "model.name", "sampling.temperature"} <= keys
    assert card.title == f"Provenance: {len(expected)} differences" and not card.collapsed
    table = _text(card)
    for k, va, _ in expected:
        assert f"<td>{k}</td><td>{json.dumps(va) if not isinstance(va, str) else va}</td>" in table
    assert "task.sha256" not in keys and "python" not in keys  # same task, same process

    same = TraceDiff(store, run_a=a, run_b=a)
    (card,) = pn.panel(same.view()).select(lambda o: isinstance(o, pn.Card))
    assert card.title == "Provenance: 0 differences" and "same provenance" in _text(card)


def _replies(tmp_path, answer: str) -> str:
    path = tmp_path / "replies.yaml"
    path.write_text(yaml.safe_dump([{"tool_calls": [{"name": "submit", "arguments": {"answer": answer}}]}]))
    return f"scripted:{path}"


@pytest.mark.parametrize("decision,observed,score", [
    ("approve", "180.15", 1.0),
    ("edit", "46.0", 0.0),
    ("reject", "look it up yourself", 0.0),
])
def test_pending_call_is_answered_and_the_run_continues(store, tmp_path, decision, observed, score):
    run_id = _run(store, seed=3, name="scripted", approval=True)
    v = TraceViewer(store, run_id=run_id)
    assert [p["tool"] for p in v.pending] == ["molecular_weight"]
    view = pn.panel(v.approval_view())
    assert "molecular_weight" in _text(view) and "aspirin" in _text(view)
    assert json.loads(v.edit_arguments) == {"molecule": "aspirin"}  # prefilled for editing
    assert {b.name for b in view.select(pn.widgets.Button)} >= {"Approve", "Run with edited arguments", "Reject"}

    v.approve_model = _replies(tmp_path, "180.16" if decision == "approve" else "46.07")
    v.edit_arguments = '{"molecule": "CCO"}'
    v.reject_reason = "look it up yourself"
    thread = v._approve(decision)
    assert thread is not None and not v.pending
    thread.join(timeout=60)
    assert not thread.is_alive()
    v.refresh()
    assert f"Run `{run_id}` done (submitted)." == v.approval_message
    assert ">done<" in _text(v.header()) and not v.pending
    assert observed in store.events(run_id, kinds=["tool_result"])[0].attrs["content"]
    assert observed in _text(v.steps_view())  # the view followed the run
    finals = store.query("SELECT value FROM scores WHERE run_id=? AND final=1", (run_id,))
    assert finals and finals[0][0] == score
    assert v._approve("approve") is None and "not waiting" in v.approval_message


def test_bad_answers_are_said_and_leave_the_run_waiting(store):
    run_id = _run(store, seed=3, name="scripted", approval=True)
    v = TraceViewer(store, run_id=run_id)
    v.edit_arguments = "{oops"
    assert v._approve("edit") is None
    assert v.approval_message.startswith("Edited arguments: not JSON")
    v.edit_arguments = "[1, 2]"
    assert v._approve("edit") is None and "a JSON object" in v.approval_message
    v.approve_model = "no-such-model-xyz"
    assert v._approve("approve") is None and v.approval_message.startswith("Cannot load model")
    assert "Edited arguments" not in _text(v.approval_view()) and "Cannot load model" in _text(v.approval_view())
    assert store.get_run(run_id)["status"] == "running" and v.pending
    v.run_id = _run(store, seed=4, name="scripted")  # another run: nothing pending, nothing said
    assert not v.pending and v.approval_message == "" and "molecular_weight" not in _text(v.approval_view())


def test_only_an_operator_answers_an_approval_and_it_is_recorded_who(store, tmp_path):
    from lab.auth import Access, add_user

    users = tmp_path / "users.json"
    add_user("vera", "viewer", "v-secret", users)
    add_user("olga", "operator", "o-secret", users)
    run_id = _run(store, seed=3, name="scripted", approval=True)
    viewer = TraceViewer(store, run_id=run_id, access=Access("vera", users))
    viewer.approve_model = _replies(tmp_path, "180.16")
    assert viewer._approve("approve") is None  # the button's callback, called as Panel would
    assert "vera (viewer) may not approve" in viewer.approval_message and viewer.pending
    operator = TraceViewer(store, run_id=run_id, access=Access("olga", users))
    operator.approve_model = viewer.approve_model
    thread = operator._approve("approve")
    assert thread is not None
    thread.join(timeout=60)
    audit = [e.attrs for e in store.events(run_id, kinds=["human_action"]) if e.attrs.get("lab.audit") == "approve"]
    assert audit == [{"lab.audit": "approve", "lab.by": "olga", "lab.decision": "approve"}]
