"""Trace steps: span depth, time and tokens per step, search, alignment of two runs."""

from __future__ import annotations

from lab.traces import Event, RunRecorder
from widgets.render import COLLAPSE_CHARS, step_html, steps_html
from widgets.steps import align, build_steps, search, totals


def _events(store):
    rec = RunRecorder.start(store, {"task": "t"})
    with rec.span("researcher", agent="researcher"):
        rec.emit("model_call", {"gen_ai.usage.input_tokens": 10, "gen_ai.usage.output_tokens": 3,
                                "content": "the dose is 5 mg"}, agent="researcher")
        with rec.span("tool"):
            rec.emit("tool_result", {"content": "x" * (COLLAPSE_CHARS + 1)})
    rec.emit("agent_message", {"content": "final"}, agent="decider")
    rec.finish()
    return store.events(rec.run_id)


def test_depth_tokens_and_time(store):
    steps = build_steps(_events(store))
    assert [s.kind for s in steps] == ["run_started", "span", "model_call", "span", "tool_result", "agent_message",
                                       "run_finished"]
    assert [s.depth for s in steps] == [0, 0, 1, 1, 2, 0, 0]
    assert steps[1].title == "researcher" and steps[2].text == "the dose is 5 mg"
    t = totals(steps)
    assert (t["tokens_in"], t["tokens_out"], t["steps"]) == (10, 3, 7)
    assert all(s.dt >= 0 for s in steps) and t["elapsed"] == steps[-1].elapsed


def test_incremental_build_matches_full_build(store):
    events = _events(store)
    part = build_steps(events[:3])
    build_steps(events[3:], start=part)
    assert [(s.seq, s.depth, s.dt) for s in part] == [(s.seq, s.depth, s.dt) for s in build_steps(events)]


def test_search_and_highlight(store):
    steps = build_steps(_events(store))
    found = search(steps, "DOSE")
    assert [s.seq for s in found] == [2]
    assert "<mark>dose</mark>" in step_html(found[0], query="dose")
    assert search(steps, "") == steps


def test_long_output_collapses(store):
    steps = build_steps(_events(store))
    html = steps_html(steps)
    assert html.count("<details>") == 1 and "(%s chars" % f"{COLLAPSE_CHARS + 1:,}" in html


def test_align_pairs_matching_steps_and_marks_gaps():
    def ev(seq, kind, agent, text):
        return Event("r", kind, {"content": text}, seq=seq, agent=agent)

    a = build_steps([ev(0, "agent_message", "researcher", "a"), ev(1, "tool_call", "", "ls"),
                     ev(2, "agent_message", "decider", "yes")])
    b = build_steps([ev(0, "agent_message", "researcher", "a"), ev(1, "agent_message", "decider", "no")])
    rows = align(a, b)
    assert [(x and x.seq, y and y.seq) for x, y in rows] == [(0, 0), (1, None), (2, 1)]
