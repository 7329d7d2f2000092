"""Trace viewer: pagination on large runs, live updates, bad input said plainly, fork, side by side."""

from __future__ import annotations

import panel as pn

from lab.traces import Event, RunRecorder, schema
from widgets.trace_view import TraceDiff, TraceViewer


def _text(viewable) -> str:
    """All text a rendered view holds (Markdown, HTML and alert panes)."""
    out = []
    for obj in viewable.select(lambda o: isinstance(o, (pn.pane.Markdown, pn.pane.HTML, pn.pane.Alert))):
        out.append(str(obj.object))
    return "\n".join(out)


def test_large_run_is_paginated(store):
    run_id = store.create_run({"task": "big"})
    store.append_many([Event(run_id, *schema.tool_result(tool_name="shell", content=f"line {i}"), elapsed=i * 0.01)
                       for i in range(5000)])
    store.finish_run(run_id, "done")
    v = TraceViewer(store, run_id=run_id, page_size=100)
    assert len(v.steps) == 5000
    page = _text(pn.panel(v.steps_view()))
    assert "steps 1–100 of 5,000 (page 1 of 50)" in page and page.count("data-seq=") == 100
    v.page = 50
    assert "line 4999" in _text(pn.panel(v.steps_view()))
    v.query = "line 4321"
    assert "steps 1–1 of 1" in _text(pn.panel(v.steps_view()))


def test_live_run_updates_and_says_it_is_running(store):
    rec = RunRecorder.start(store, {"task": "live"})
    v = TraceViewer(store, run_id=rec.run_id)
    assert "still being written" in _text(pn.panel(v.header()))
    rec.emit(*schema.agent_message(content="new step"))
    assert v.refresh() == 1 and v.steps[-1].text == "new step"
    rec.finish()
    v.refresh()
    header = _text(pn.panel(v.header()))
    assert ">done<" in header and "still being written" not in header


def test_bad_input_is_said_plainly(store):
    assert "No run `nope`" in _text(pn.panel(TraceViewer(store, run_id="nope").header()))
    empty = store.create_run({"task": "t"}, status="done")
    assert "has no events yet" in _text(pn.panel(TraceViewer(store, run_id=empty).header()))
    assert "Select a run" in _text(pn.panel(TraceViewer(store).header()))


def test_fork_uses_the_given_forker_and_reports_failures(store):
    rec = RunRecorder.start(store, {"task": "t", "model": "a"})
    rec.emit(*schema.agent_message(content="hi"))
    rec.finish()
    calls = []

    def forker(st, run_id, step, *, model=None, prompt=None):
        calls.append((run_id, step, model, prompt))
        return st.create_run({"task": "t", "model": model}, parent_run_id=run_id, fork_step=step, status="done")

    v = TraceViewer(store, run_id=rec.run_id, forker=forker)
    v.param.update(fork_step=1, fork_model="b")
    v._do_fork()
    assert calls == [(rec.run_id, 1, "b", None)]
    assert store.get_run(v.forked_run)["parent_run_id"] == rec.run_id
    assert "Forked into run" in _text(pn.panel(v.fork_status()))

    def broken(*a, **k):
        raise ValueError("no saved state at step 9")

    v.forker = broken
    v._do_fork()
    assert "Fork failed: no saved state at step 9" in _text(pn.panel(v.fork_status()))


def test_outline_and_diff(study):
    store, ids = study
    v = TraceViewer(store, run_id=ids[0])
    tree = _text(pn.panel(v.outline()))
    nested = sum(1 for s in v.steps if s.parent_id is not None)  # grades added afterwards hang from no span
    assert f"run started task · <b>react</b> — {nested} events" in tree
    d = TraceDiff(store, run_a=ids[0], run_b=ids[1])
    rows = d.rows()
    assert len(rows) >= max(len(v.steps), len(TraceViewer(store, run_id=ids[1]).steps))
    assert "aligned rows" in _text(pn.panel(d.view()))
    assert "Pick two runs" in _text(pn.panel(TraceDiff(store).view()))
