"""``lab store copy``: a whole store moves between SQLite and PostgreSQL and back without losing a byte."""

from __future__ import annotations

import io
from typing import TypedDict

from langgraph.graph import END, START, StateGraph

from lab.traces import Event, Score
from lab.traces.backend import open_trace_store
from lab.traces.checkpoints import checkpointer_for
from lab.traces.jsonl import export_runs

SECRET = "sk-" + "Q9w8E7r6" * 4


class _S(TypedDict):
    n: int


def _graph():
    g = StateGraph(_S)
    g.add_node("a", lambda s: {"n": s["n"] * 2})
    g.add_node("b", lambda s: {"n": s["n"] + 1})
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    return g


def _fill(path) -> list[str]:
    s = open_trace_store(path)
    ids = []
    for k in range(3):
        rid = s.create_run({"task": f"t{k}", "seed": k, "agent": "duo", "key": SECRET}, batch_id="b",
                           is_human=k == 2)
        s.append_many([Event(rid, "agent_message", {"k": k, "f": 1 / 3, "s": "é\u2028%?"}, span_id=f"s{k}"),
                       Event(rid, "model_call", {"gen_ai.usage.input_tokens": k}, elapsed=0.1 * k, agent="a")])
        s.add_score(rid, Score("match", k / 3, details={"why": "x"}))
        s.add_score(rid, Score("expert", 3.0, provenance="human", source="ann", dimension="clarity", final=False))
        if k < 2:
            s.finish_run(rid, "done" if k == 0 else "failed", error="boom" if k else None, elapsed=1.25)
        ids.append(rid)  # the last stays running: a live run copies with its owner
    cfg = {"configurable": {"thread_id": ids[0]}}
    _graph().compile(checkpointer=checkpointer_for(s.path)).invoke({"n": 5}, cfg)
    s.close()
    return ids


def _snapshot(location) -> tuple:
    """Everything a store holds, as bytes and rows: the JSONL export of every run, the raw tables, checkpoints."""
    s = open_trace_store(location, readonly=True)
    ids = [r[0] for r in s.query("SELECT run_id FROM runs ORDER BY run_id")]
    out = io.StringIO()
    export_runs(s, ids, out)
    runs = s.query("SELECT * FROM runs ORDER BY run_id")
    scores = s.query("SELECT * FROM scores ORDER BY run_id, seq")
    saver = getattr(s, "checkpointer", None) or checkpointer_for(s.path)
    cps = sorted((t.config["configurable"]["thread_id"], t.config["configurable"]["checkpoint_id"],
                  t.checkpoint["channel_values"].get("n"), t.metadata.get("step"),
                  (t.parent_config or {}).get("configurable", {}).get("checkpoint_id"))
                 for t in saver.list(None))
    s.close()
    return out.getvalue().encode(), runs, scores, cps


def test_sqlite_to_postgresql_and_back_is_lossless(tmp_path, pg_url, lab):
    src, back = tmp_path / "src.db", tmp_path / "back.db"
    ids = _fill(src)
    r = lab("store", "copy", str(src), pg_url)
    assert r.returncode == 0, r.stderr
    assert "copied 3 runs, 12 events, 6 scores and 4 checkpoints" in r.stdout  # 3 × (2 events + 2 scores)
    r = lab("store", "copy", pg_url, str(back))
    assert r.returncode == 0, r.stderr
    before, mid, after = _snapshot(src), _snapshot(pg_url), _snapshot(back)
    assert after[0] == before[0] and mid[0] == before[0] and len(before[0]) > 1000
    assert after[1:] == before[1:] and mid[1:] == before[1:]  # every column, PostgreSQL too
    assert len(before[3]) == 4 and {c[2] for c in before[3]} == {None, 5, 10, 11}
    assert SECRET.encode() not in before[0] + after[0]
    # The copied graph resumes from its checkpoint in the copy.
    store = open_trace_store(back)
    assert _graph().compile(checkpointer=checkpointer_for(store.path)).get_state(
        {"configurable": {"thread_id": ids[0]}}).values == {"n": 11}
    assert store.get_run(ids[2])["status"] == "running"


def test_non_empty_destination_needs_force(tmp_path, pg_url, lab):
    a, b = tmp_path / "a.db", tmp_path / "b.db"
    _fill(a)
    with open_trace_store(b) as s:
        keep = s.create_run({"task": "mine"})
    r = lab("store", "copy", str(a), str(b))
    assert r.returncode == 2 and "already holds runs" in r.stderr and "--force" in r.stderr
    assert open_trace_store(b).get_run(keep)
    for dst in (str(b), pg_url):
        assert lab("store", "copy", str(a), dst, "--force").returncode == 0
        assert _snapshot(dst)[0] == _snapshot(a)[0]
    r = lab("store", "copy", str(b), pg_url)  # the PostgreSQL copy is not empty either
    assert r.returncode == 2 and "already holds runs" in r.stderr
    r = lab("store", "copy", str(b), pg_url, "--force")
    assert r.returncode == 0, r.stderr
    assert _snapshot(pg_url)[0] == _snapshot(b)[0]


def test_bad_locations_are_one_line(tmp_path, lab):
    r = lab("store", "copy", str(tmp_path / "missing.db"), str(tmp_path / "x.db"))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "no trace store at" in r.stderr
    _fill(tmp_path / "a.db")
    r = lab("store", "copy", str(tmp_path / "a.db"), "postgresql://u:hunter2pw@127.0.0.1:1/lab")
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "cannot reach the trace store" in r.stderr and "hunter2pw" not in r.stderr and "127.0.0.1:1" in r.stderr
