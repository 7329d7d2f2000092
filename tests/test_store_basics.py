"""Trace store: schema, ordering, spans, scores, status and errors."""

from __future__ import annotations

import threading

import pytest

from lab.traces import Event, EventKind, RunRecorder, Score, StoreError, TraceStore


def test_events_keep_order_and_spans(store):
    rec = RunRecorder.start(store, {"task": "q1", "agent": "dera", "model": "scripted"})
    with rec.span("decider", agent="decider") as sid:
        ev = rec.emit(EventKind.AGENT_MESSAGE, {"content": "draft"}, agent="decider")
    rec.finish()
    events = store.events(rec.run_id)
    assert [e.seq for e in events] == list(range(len(events)))
    assert [e.kind for e in events] == ["run_started", "span", "agent_message", "run_finished"]
    assert ev.parent_id == sid and events[1].span_id == sid
    assert store.get_run(rec.run_id)["status"] == "done"


def test_scores_are_indexed_with_provenance(store):
    rec = RunRecorder.start(store, {"task": "q1"})
    rec.score(Score("judge", 0.5, provenance="model", source="smollm2", final=False))
    rec.score(Score("judge", 0.75, provenance="model", source="smollm2"))
    rec.finish()
    df = store.runs_frame()
    assert df.loc[0, "score.judge"] == 0.75
    sf = store.scores_frame()
    assert list(sf["provenance"]) == ["model", "model"] and list(sf["final"]) == [False, True]


def test_concurrent_threads_lose_nothing(store):
    run_id = store.create_run({"task": "t"})

    def writer(i):
        for j in range(200):
            store.append(Event(run_id, "agent_message", {"w": i, "j": j}))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    events = store.events(run_id)
    assert len(events) == 800
    assert [e.seq for e in events] == list(range(800))
    for i in range(4):  # each writer's events stay in its own order
        js = [e.attrs["j"] for e in events if e.attrs["w"] == i]
        assert js == list(range(200))


def test_secrets_never_stored(store):
    rec = RunRecorder.start(store, {"task": "t", "api_key": "sk-" + "a" * 30})
    rec.emit("model_call", {"headers": "Authorization: Bearer abcdefghijk123"})
    raw = "".join(r[-1] for r in store.raw_events(rec.run_id))
    assert "a" * 30 not in raw and "abcdefghijk123" not in raw
    assert "a" * 30 not in str(store.get_run(rec.run_id)["config"])


def test_events_are_append_only(store):
    run_id = store.create_run({})
    store.append(Event(run_id, "agent_message", {}))
    with pytest.raises(Exception, match="append-only"):
        store.query("DELETE FROM events")


def test_corrupt_file_is_a_clear_error_and_untouched(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    before = bad.read_bytes()
    with pytest.raises(StoreError, match="not a readable trace store"):
        TraceStore(bad)
    assert bad.read_bytes() == before


def test_final_status_is_checked(store):
    run_id = store.create_run({})
    with pytest.raises(StoreError, match="not a final run status"):
        store.finish_run(run_id, "running")
