"""DERA's Researcher–Decider loop with scripted models: turns, roles' spans, stopping, limits, forks."""

from __future__ import annotations

import pytest

from lab.agents import AgentError, DeraAgent, DeraPrompts, Limits
from lab.models import ModelOutputError, ScriptedModel


def draft(answer, why="because"):
    return {"json": {"answer": answer, "explanation": why}}


def research(msg, done=False):
    return {"json": {"message": msg, "done": done}}


def decide(answer, final, msg="ok"):
    return {"json": {"message": msg, "answer": answer, "final": final}}


def test_dialog_until_decider_final_with_role_spans(store):
    decider = ScriptedModel([draft("Penicillin"), decide("Ceftriaxone", False, "switching"),
                             decide("Ceftriaxone", True)], name="dec")
    researcher = ScriptedModel([research("Gonococcus is often penicillin resistant"), research("Agreed?")],
                               name="res")
    run = DeraAgent(decider, researcher).start(store, "Which drug?", task="medqa/1")
    res = run.run()
    assert (res.status, res.answer, res.stop_reason, res.steps) == ("done", "Ceftriaxone", "final", 2)
    evs = store.events(res.run_id)
    msgs = [(e.agent, e.attrs["content"]) for e in evs if e.kind == "agent_message"]
    assert msgs == [("decider", "because"), ("researcher", "Gonococcus is often penicillin resistant"),
                    ("decider", "switching"), ("researcher", "Agreed?"), ("decider", "ok")]
    spans = {e.attrs["lab.span.name"]: e.span_id for e in evs if e.kind == "span"}
    assert set(spans) == {"decider", "researcher"}  # one span per role; every turn hangs from it
    for e in evs:
        if e.kind in ("agent_message", "model_call"):
            assert e.parent_id == spans[e.agent]
    calls = [e for e in evs if e.kind == "model_call"]
    assert [c.attrs["gen_ai.request.model"] for c in calls] == ["dec", "res", "dec", "res", "dec"]
    assert store.get_run(res.run_id)["model"] == "dec+res"
    # the researcher sees the question, the current answer and the dialog so far
    seen = researcher.requests[1][1].content
    assert "Which drug?" in seen and "Current answer: Ceftriaxone" in seen and "Decider: switching" in seen
    assert "physician checking" in researcher.requests[0][0].content  # default QA role prompt


def test_researcher_done_ends_after_decider_reply(store):
    m = ScriptedModel([draft("A"), research("Looks right", done=True), decide("A", False)])
    res = DeraAgent(m).start(store, "q").run()
    assert (res.answer, res.stop_reason, res.steps) == ("A", "final", 1)


def test_round_limit_keeps_latest_answer(store):
    m = ScriptedModel([draft("A"), research("no"), decide("B", False), research("no"), decide("C", False)])
    res = DeraAgent(m, limits=Limits(steps=2)).start(store, "q").run()
    assert (res.answer, res.stop_reason, res.steps) == ("C", "limit:steps", 2)
    assert store.events(res.run_id, kinds=["limit"])[0].attrs["lab.limit.name"] == "steps"


def test_invalid_json_retried_then_capped(store):
    m = ScriptedModel([draft("A"), ModelOutputError("not JSON"), research("fine", True), decide("A", True)])
    res = DeraAgent(m).start(store, "q").run()
    assert (res.status, res.answer) == ("done", "A")
    m2 = ScriptedModel([draft("A"), *[ModelOutputError("not JSON")] * 3])
    res2 = DeraAgent(m2, limits=Limits(steps=3, invalid_replies=3)).start(store, "q").run()
    assert (res2.status, res2.answer, res2.stop_reason) == ("done", "A", "invalid_replies")


def test_plain_text_reply_is_read_leniently(store):
    from lab.models import ChatResponse, Message

    # a backend that ignored the response schema (no constrained decoding) and answered in prose
    m = ScriptedModel([draft("A"), ChatResponse(Message("assistant", "Consider B.")),
                       ChatResponse(Message("assistant", "B"))])
    res = DeraAgent(m, limits=Limits(steps=1)).start(store, "q").run()
    assert res.answer == "B"


@pytest.mark.parametrize("kind,label", [("summary", "Conversation"), ("care_plan", "Conversation")])
def test_task_kinds_and_custom_prompts(store, kind, label):
    m = ScriptedModel([draft("S"), research("ok", True), decide("S2", True)])
    DeraAgent(m, kind=kind).start(store, "Doctor: hi").run()
    assert m.requests[0][1].content.startswith(f"{label}:")
    custom = DeraPrompts(draft="D!", researcher="R!", decider="C!")
    m2 = ScriptedModel([draft("S"), research("ok", True), decide("S2", True)])
    DeraAgent(m2, prompts=custom).start(store, "x").run()
    assert [r[0].content for r in m2.requests] == ["D!", "R!", "C!"]
    with pytest.raises(AgentError, match="unknown DERA task kind"):
        DeraAgent(m2, kind="poetry")


def test_fork_after_first_round_with_another_decider(store):
    m = ScriptedModel([draft("A"), research("hmm"), decide("B", False), research("sure", True), decide("B", True)])
    parent = DeraAgent(m).start(store, "q")
    assert parent.run().answer == "B"
    assert parent.steps() == [0, 1, 2]
    other = ScriptedModel([research("reconsider", True), decide("Z", True)], name="other")
    child = parent.fork(1, agent=DeraAgent(other))
    res = child.run()
    assert (res.answer, res.steps) == ("Z", 2)
    assert "Current answer: B" in other.requests[0][1].content
    row = store.get_run(child.run_id)
    assert (row["parent_run_id"], row["fork_step"]) == (parent.run_id, 1)
    # the fork opened its own role spans
    assert {e.attrs["lab.span.name"] for e in store.events(child.run_id, kinds=["span"])} == {"researcher", "decider"}
