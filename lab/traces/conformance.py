"""The trace store conformance suite: what every backend (SQLite file, PostgreSQL server) must do alike.

Each ``check_*`` function takes the location of a new, empty store (a file path or a ``postgresql://`` URL),
opens it with :func:`~lab.traces.backend.open_trace_store`, and raises ``AssertionError`` when the backend
breaks a promise. A backend's test module runs every function of :data:`CHECKS` against a fresh store::

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    def test_store(check, fresh_store_location):
        check(fresh_store_location)
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypedDict

import lab.traces.schema as schema
from lab.traces.backend import open_trace_store
from lab.traces.errors import StoreError
from lab.traces.schema import Event, Score

Location = str | os.PathLike[str]
SECRET = "sk-" + "A1b2C3d4" * 4
_ROOT = Path(__file__).resolve().parents[2]


def _raises(fn: Callable[[], Any], *words: str) -> str:
    try:
        fn()
    except StoreError as e:
        msg = str(e)
        assert "\n" not in msg and all(w in msg for w in words), msg
        return msg
    raise AssertionError(f"expected a StoreError mentioning {words}")


def check_runs(location: Location) -> None:
    """Runs: create, read back (also by id prefix), filter, finish, reopen, refuse duplicates and unknowns."""
    with open_trace_store(location) as s:
        a = s.create_run({"task": "t1", "agent": "solo", "model": "m", "seed": 7, "x": [1, 2.5, None]},
                         batch_id="b1", is_human=True)
        b = s.create_run({"task": "t2"}, run_id="fixed-id-0001", parent_run_id=a, fork_step=3)
        run = s.get_run(a)
        assert (run["task"], run["agent"], run["model"], run["seed"], run["is_human"]) == ("t1", "solo", "m", 7, True)
        assert run["config"]["x"] == [1, 2.5, None] and run["status"] == "running" and run["owner"]
        assert s.get_run("fixed-id")["run_id"] == b and s.get_run(b)["fork_step"] == 3
        assert [r["run_id"] for r in s.list_runs(batch_id="b1")] == [a]
        _raises(lambda: s.create_run({}, run_id=b), "already exists", b)
        _raises(lambda: s.get_run("nope"), "no run")
        s.finish_run(a, "done", elapsed=1.5, error=None)
        assert s.get_run(a)["status"] == "done" and s.get_run(a)["elapsed"] == 1.5
        assert [r["run_id"] for r in s.list_runs(status="running")] == [b]
        _raises(lambda: s.reopen_run(a), "done", "fork")
        _raises(lambda: s.finish_run("nope", "done"), "no run")
        _raises(lambda: s.finish_run(b, "running"), "not a final run status")
        s.finish_run(b, "interrupted")
        s.reopen_run(b)
        s.set_run_fields(b, batch_id="b2", elapsed=2.0)
        assert s.get_run(b)["status"] == "running" and s.get_run(b)["batch_id"] == "b2"


def check_events_are_ordered_and_append_only(location: Location) -> None:
    """Sequence numbers are 0, 1, 2 … per run, kinds and attributes come back exactly; events cannot change."""
    with open_trace_store(location) as s:
        a, b = s.create_run({"task": "a"}), s.create_run({"task": "b"})
        attrs = {"s": "é\n\u2028 50% ?", "f": 0.1, "big": 2**53 + 1, "n": None, "l": [True, {"k": -0.0}]}
        evs = s.append_many([Event(a, "agent_message", attrs), Event(b, "tool_call"), Event(a, "model_call"),
                             Event(b, "tool_result", span_id="sp", parent_id="pa", agent="coder")])
        assert [(e.run_id, e.seq) for e in evs] == [(a, 0), (b, 0), (a, 1), (b, 1)]
        assert s.append(Event(a, "error", elapsed=3.25)).seq == 2
        got = s.events(a)
        assert [e.seq for e in got] == [0, 1, 2] and got[0].attrs == attrs and got[2].elapsed == 3.25
        assert [e.kind for e in s.events(a, kinds=["model_call", "error"])] == ["model_call", "error"]
        assert [e.seq for e in s.events(a, after_seq=0)] == [1, 2]
        last = s.events(b)[1]
        assert (last.span_id, last.parent_id, last.agent) == ("sp", "pa", "coder")
        assert s.count_events() == 5 and s.count_events(b) == 2
        assert s.raw_events(a)[0][8] == '{"s":"é\\n\u2028 50% ?","f":0.1,"big":9007199254740993,"n":null,' \
                                        '"l":[true,{"k":-0.0}]}'
        for sql in ("UPDATE events SET kind='x' WHERE run_id=?", "DELETE FROM events WHERE run_id=?"):
            _raises(functools.partial(s.query, sql, (a,)), "append-only")
        assert s.count_events(a) == 3


def check_concurrent_threads(location: Location) -> None:
    """Threads appending to one run at once: every event kept, seqs gap-free, each thread's order kept."""
    with open_trace_store(location) as s:
        rid = s.create_run({"task": "threads"})

        def write(t: int) -> None:
            for i in range(40):
                s.append(Event(rid, "agent_message", {"t": t, "i": i}))

        threads = [threading.Thread(target=write, args=(t,)) for t in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        evs = s.events(rid)
        assert [e.seq for e in evs] == list(range(240))
        for t in range(6):
            assert [e.attrs["i"] for e in evs if e.attrs["t"] == t] == list(range(40))


def _spawn(code: str, *args: str, stdin: bool = False) -> subprocess.Popen[str]:
    """A Python child process running ``code`` with ``args``, its output (and, with ``stdin``, its input) piped."""
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.PIPE if stdin else None, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(_ROOT), *sys.path])})


def _stdout(proc: subprocess.Popen[str]) -> IO[str]:
    """A child's piped output."""
    assert proc.stdout is not None, "the child's output is not piped"
    return proc.stdout


_PROCESS_WRITER = """
    import sys
    from lab.traces import Event
    from lab.traces.backend import open_trace_store
    store = open_trace_store(sys.argv[1])
    writer, shared, n = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    own = store.create_run({"task": f"writer-{writer}"})
    print(own, flush=True)
    sys.stdin.readline()  # start together
    for j in range(n):
        if j % 10 == 0:
            store.append_many([Event(shared, "agent_message", {"w": writer, "j": j + k}) for k in range(10)])
        store.append(Event(own, "agent_message", {"w": writer, "j": j}))
"""


def check_concurrent_processes(location: Location) -> None:
    """Writer processes started together on one store: nothing lost, seqs gap-free with no duplicates, each
    writer's order kept, and a batch lands whole (never interleaved with another writer's)."""
    with open_trace_store(location) as s:
        shared = s.create_run({"task": "shared"})
    n, writers = 150, 4
    procs = [_spawn(_PROCESS_WRITER, str(location), str(w), shared, str(n), stdin=True) for w in range(writers)]
    own = [_stdout(p).readline().strip() for p in procs]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * writers, errs
    with open_trace_store(location) as s:
        evs = s.events(shared)
        assert [e.seq for e in evs] == list(range(writers * n))
        for w in range(writers):
            assert [e.attrs["j"] for e in evs if e.attrs["w"] == w] == list(range(n))
            mine = s.events(own[w])
            assert [e.attrs["j"] for e in mine] == list(range(n)) and [e.seq for e in mine] == list(range(n))
        batches = [{e.attrs["w"] for e in evs[i:i + 10]} for i in range(0, len(evs), 10)]
        assert all(len(b) == 1 for b in batches)


_SLEEPER = """
    import sys, time
    from lab.traces import RunRecorder, schema
    from lab.traces.backend import open_trace_store
    rec = RunRecorder.start(open_trace_store(sys.argv[1]), {"task": "long"})
    rec.emit(*schema.agent_message(content="working"))
    print(rec.run_id, flush=True)
    time.sleep(600)
"""


def check_dead_process_run_is_interrupted(location: Location) -> None:
    """A run stays ``running`` while its process lives (other processes opening the store leave it alone), and
    is marked ``interrupted`` the next time the store opens after the process died."""
    proc = _spawn(_SLEEPER, str(location))
    try:
        run_id = _stdout(proc).readline().strip()
        assert run_id, proc.communicate()[1]
        with open_trace_store(location) as other:
            assert other.get_run(run_id)["status"] == "running"
            live = other.create_run({"task": "mine"})
    finally:
        proc.kill()
        proc.wait(timeout=30)
    with open_trace_store(location) as s:
        run = s.get_run(run_id)
        assert run["status"] == "interrupted" and run["finished_at"] is not None
        assert [e.kind for e in s.events(run_id)] == ["run_started", "agent_message"]
        assert s.get_run(live)["status"] == "running"


_KILLED_WRITER = """
    import sys
    from lab.traces import Event
    from lab.traces.backend import open_trace_store
    store = open_trace_store(sys.argv[1])
    run_id = store.create_run({"task": "killed"})
    print(run_id, flush=True)
    i = 0
    while True:
        print(store.append(Event(run_id, "agent_message", {"i": i, "pad": "x" * 200})).seq, flush=True)
        i += 1
"""


def check_kill_9_loses_nothing_returned(location: Location) -> None:
    """Every append that returned survives ``kill -9`` of its writer; the run is then marked ``interrupted``."""
    proc = _spawn(_KILLED_WRITER, str(location))
    run_id = _stdout(proc).readline().strip()
    assert run_id, proc.communicate()[1]
    printed = [int(_stdout(proc).readline()) for _ in range(200)]
    proc.send_signal(signal.SIGKILL)
    rest, _ = proc.communicate(timeout=60)
    printed += [int(x) for x in rest.split()]
    assert proc.returncode == -signal.SIGKILL
    with open_trace_store(location) as s:
        evs = s.events(run_id)
        assert {e.seq for e in evs} >= set(printed)
        assert [e.seq for e in evs] == list(range(len(evs)))
        assert [e.attrs["i"] for e in evs] == list(range(len(evs)))
        run = s.get_run(run_id)
        assert run["status"] == "interrupted" and "stopped" in (run["error"] or "") and run["finished_at"]


def check_scores_and_frames(location: Location) -> None:
    """Scores land as events and in the scores table; the runs, events and scores frames agree."""
    with open_trace_store(location) as s:
        a, b = s.create_run({"task": "t", "agent": "x"}), s.create_run({"task": "t", "agent": "y"})
        s.add_score(a, Score("match", 1.0))
        s.add_score(a, Score("expert", 4.0, provenance="human", source="ann", dimension="clarity"))
        s.add_score(b, Score("match", 0.0, label="fail", details={"why": "off"}))
        s.add_score(b, Score("match", 0.5, final=False))
        s.append(Event(b, *schema.model_call(system="scripted", model="m", input_messages=[], input_tokens=3)))
        for r in (a, b):
            s.finish_run(r, "done")
        runs = s.runs_frame().set_index("run_id")
        assert runs.loc[a, "score.match"] == 1.0 and runs.loc[b, "score.match"] == 0.0
        assert runs.loc[a, "score.expert.clarity"] == 4.0
        scores = s.scores_frame()
        assert len(scores) == 4 and len(s.scores_frame(final_only=True)) == 3
        row = scores[(scores.run_id == a) & (scores.scorer == "expert")].iloc[0]
        assert (row.provenance, row.source, row.item_id, bool(row.final)) == ("human", "ann", "t", True)
        ev = s.events_frame(b, expand=True)
        assert list(ev["seq"]) == [0, 1, 2] and ev[schema.INPUT_TOKENS].iloc[2] == 3
        assert list(s.events_frame()["run_id"]) == sorted([a, a, b, b, b])
        from lab.traces.frames import final_score_means

        means = final_score_means(s, by="agent", scorers=["match"])
        assert means.loc["x", "match"] == 1.0 and means.loc["y", "match"] == 0.0


def check_typed_reads(location: Location) -> None:
    """The typed reads that views use instead of SQL: each run's latest event, attribute values of events by kind,
    scores with provenance and details (filtered, in the order given), score ranges, totals, and a run's working
    time up to a moment."""
    with open_trace_store(location) as s:
        assert s.totals() == (0, 0, 0, 0.0)
        a, b, c = (s.create_run({"task": t}, run_id=f"run-{k}", created_at=float(i))
                   for i, (k, t) in enumerate([("a", "t"), ("b", "t"), ("c", "u")]))
        pending = {"lab.action": "awaiting_approval", "lab.pending": [{"id": "1"}]}
        s.append_many([
            Event(a, "agent_message", {"content": "hi", "lab.answer": "42", "nested": {"x": {"y": "deep"}}},
                  ts=10.0, elapsed=1.0),
            Event(a, "tool_call", {"gen_ai.tool.name": "submit", "lab.arguments": {"answer": "7"}, "flag": True,
                                   "n": 3, "f": 0.5, "obj": {"k": [1, "é"], "a": None}}, ts=20.0, elapsed=2.5),
            Event(b, "agent_message", pending, ts=30.0, elapsed=0.5),
            Event(c, "agent_message", {"content": "x"}, ts=31.0), Event(c, "tool_call", ts=32.0),
        ])
        assert (s.last_elapsed(a), s.last_elapsed(a, until=15.0), s.last_elapsed(a, until=5.0)) == (2.5, 1.0, 0.0)

        def latest(**kw: Any) -> list[tuple[str, int]]:
            return [(e.run_id, e.seq) for e in s.latest_events(**kw)]

        assert latest() == [(a, 1), (b, 0), (c, 1)]
        got = s.latest_events(statuses=["running", "interrupted"], kinds=["agent_message"])
        assert [(e.run_id, e.kind, e.attrs) for e in got] == [(b, "agent_message", pending)]
        assert latest(run_id=a) == [(a, 1)] and latest(kinds=[]) == [] and latest(statuses=["done"]) == []

        keys: list[str | tuple[str, ...]] = ["lab.answer", "content", ("lab.arguments", "answer"), "flag", "n", "f",
                                             "obj", ("nested", "x", "y")]
        assert s.event_values(["agent_message", "tool_call"], keys) == [
            (a, 0, "agent_message", ("42", "hi", None, None, None, None, None, "deep")),
            (a, 1, "tool_call", (None, None, "7", 1, 3, 0.5, '{"k":[1,"é"],"a":null}', None)),
            (b, 0, "agent_message", (None,) * 8),
            (c, 0, "agent_message", (None, "x", *(None,) * 6)),
            (c, 1, "tool_call", (None,) * 8),
        ]
        assert [r.values for r in s.event_values(["tool_call"], ["gen_ai.tool.name"])] == [("submit",), (None,)]
        try:
            s.event_values(["tool_call"], ['a"b'])
            raise AssertionError("a key with a double quote was read")
        except ValueError:
            pass

        s.add_score(a, Score("match", 0.5, final=False), ts=39.0)
        s.add_score(a, Score("match", 1.0), ts=40.0, elapsed=2.5)
        s.add_score(b, Score("expert", 4.0, provenance="human", source="ann", dimension="clarity",
                             details={"why": "ok"}), ts=41.0)
        s.add_score(b, Score("expert", 2.0, provenance="human", source="bob", dimension="clarity"), ts=42.0)
        s.add_score(a, Score("expert", 5.0, provenance="human", source="ann", dimension="depth"), ts=43.0)
        s.add_score(c, Score("preference", None, provenance="human", source="ann", label="tie",
                             details={"opponent": a}), ts=44.0)
        assert [(r["run_id"], r["scorer"], r["value"]) for r in s.scores()] == [
            (a, "match", 0.5), (a, "match", 1.0), (b, "expert", 4.0), (b, "expert", 2.0), (a, "expert", 5.0),
            (c, "preference", None)]
        assert s.scores(b, source="ann")[0] == {
            "run_id": b, "seq": 1, "item_id": None, "scorer": "expert", "dimension": "clarity", "value": 4.0,
            "label": None, "provenance": "human", "source": "ann", "final": True, "elapsed": 0.0, "ts": 41.0,
            "details": {"why": "ok"}}
        assert [(r["scorer"], r["value"], r["elapsed"]) for r in s.scores(a, final_only=True)] == [
            ("match", 1.0, 2.5), ("expert", 5.0, 0.0)]
        assert [r["run_id"] for r in s.scores(scorer="expert", provenance="human", source="ann")] == [b, a]
        pref = s.scores(scorer="preference")
        assert [(r["label"], r["details"], r["final"]) for r in pref] == [("tie", {"opponent": a}, True)]
        assert s.scores(scorer="preference", valued=True) == [] and s.scores(provenance="model") == []
        assert s.score_ranges("expert", provenance="human") == [("clarity", 2.0, 4.0), ("depth", 5.0, 5.0)]
        assert s.score_ranges("expert", provenance="model") == [] and s.score_ranges("match") == [("overall", 0.5, 1.0)]

        s.finish_run(b, "done", finished_at=50.0)
        assert s.totals() == (3, 2, 6, 50.0) and [r for r, _ in latest(statuses=["running"])] == [a, c]


def check_secrets_are_redacted(location: Location) -> None:
    """Secrets never reach the store: in configs, attributes, errors and descriptive columns."""
    with open_trace_store(location) as s:
        rid = s.create_run({"task": "t", "api_key": SECRET}, model=f"http://x/?key={SECRET}")
        s.append(Event(rid, "model_call", {"prompt": f"use {SECRET}"}))
        s.finish_run(rid, "failed", error=f"bad key {SECRET}")
        dump = repr([s.get_run(rid), s.raw_events(rid)])
        assert SECRET not in dump and "A1b2C3d4" not in dump, dump


def check_transactions_are_atomic(location: Location) -> None:
    """Writes grouped in ``transaction()`` land together or not at all."""
    with open_trace_store(location) as s:
        keep = s.create_run({"task": "keep"})
        try:
            with s.transaction():
                lost = s.create_run({"task": "lost"})
                s.append(Event(lost, "agent_message"))
                s.append(Event(keep, "agent_message"))
                raise RuntimeError("abort")
        except RuntimeError:
            pass
        assert [r["run_id"] for r in s.list_runs()] == [keep] and s.count_events() == 0
        assert s.append(Event(keep, "agent_message")).seq == 0


class _State(TypedDict):
    n: int


def check_checkpoints(location: Location) -> None:
    """LangGraph checkpoints of a run are kept with the store: a graph's state comes back in a new process's
    checkpointer, with its history, and a checkpoint's secrets are redacted."""
    from langchain_core.runnables import RunnableConfig
    from langgraph.graph import END, START, StateGraph

    def step(state: _State) -> _State:
        return {"n": state["n"] + 1}

    g = StateGraph(_State)
    g.add_node("a", step)
    g.add_node("b", step)
    g.add_edge(START, "a")
    g.add_edge("a", "b")
    g.add_edge("b", END)
    with open_trace_store(location) as s:
        rid = s.create_run({"task": "graph"})
        saver = s.checkpointer
        cfg: RunnableConfig = {"configurable": {"thread_id": rid}}
        assert g.compile(checkpointer=saver).invoke({"n": 1}, cfg) == {"n": 3}
        latest = saver.get_tuple(cfg)
        assert latest is not None, "no checkpoint after the graph ran"
        saver.put_writes({"configurable": {"thread_id": rid, "checkpoint_ns": "",
                                           "checkpoint_id": latest.config["configurable"]["checkpoint_id"]}},
                         [("n", SECRET)], "task-1")
        history = list(saver.list(cfg))
        assert len(history) == 4 and history[0].checkpoint["channel_values"]["n"] == 3
        written = saver.get_tuple(cfg)
        assert written is not None and SECRET not in repr(written.pending_writes)


def check_readonly(location: Location) -> None:
    """A store opened read-only reads everything and refuses every write with one clear line."""
    with open_trace_store(location) as s:
        rid = s.create_run({"task": "t"})
        s.append(Event(rid, "agent_message"))
    with open_trace_store(location, readonly=True) as r:
        assert r.count_events(rid) == 1 and r.get_run(rid)["status"] == "running"
        _raises(lambda: r.append(Event(rid, "agent_message")), "read-only")
        _raises(lambda: r.create_run({}), "read-only")


def check_jsonl_round_trip(location: Location) -> None:
    """Finished runs exported to JSONL and imported back (under new run ids) export the same bytes; importing
    runs that exist already is refused whole, keeping what the store had."""
    import io

    from lab.traces.jsonl import export_runs, import_file

    with open_trace_store(location) as s:
        ids = []
        for k in range(2):
            rid = s.create_run({"task": f"t{k}", "seed": k}, run_id=f"orig-run-{k}")
            s.append_many([Event(rid, "agent_message", {"k": k, "f": 1 / 3, "u": "é\u2028"}, span_id="s1"),
                           Event(rid, "tool_call", elapsed=0.5, agent="coder")])
            s.add_score(rid, Score("match", k / 2, details={"why": "x"}))
            s.finish_run(rid, "done", elapsed=0.25)
            ids.append(rid)
        out = io.StringIO()
        assert export_runs(s, ids, out) == 2
        first = out.getvalue()
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"lab-conformance-{os.getpid()}.jsonl"
        try:
            path.write_text(first)
            _raises(lambda: import_file(s, path), "already exists")
            assert s.count_events() == 6 and len(s.list_runs()) == 2
            path.write_text(first.replace("orig-run-", "copy-run-"))
            assert import_file(s, path) == ["copy-run-0", "copy-run-1"]
        finally:
            path.unlink(missing_ok=True)
        again = io.StringIO()
        export_runs(s, ["copy-run-0", "copy-run-1"], again)
        assert again.getvalue() == first.replace("orig-run-", "copy-run-")
        assert s.scores_frame()["run_id"].tolist().count("copy-run-1") == 1


def check_leases(location: Location) -> None:
    """A combination's lease has one live holder: a second taker is told who holds it; the holder renews and
    releases it; an expired lease is taken over; threads racing for one lease leave exactly one holder."""
    from lab.traces.store import current_owner

    me = current_owner()
    with open_trace_store(location) as s:
        assert s.take_lease("k", me, "a", 60) is None
        assert s.take_lease("k", me, "b", 60) == me  # held by a live process (this one), under another token
        assert s.take_lease("k", me, "a", 60) is None and s.renew_lease("k", "a", 60)
        assert not s.renew_lease("k", "b", 60)
        s.release_lease("k", "b")  # not b's: nothing happens
        assert s.take_lease("k", me, "b", 60) == me
        s.release_lease("k", "a")
        assert s.take_lease("k", me, "b", 0.01) is None
        threading.Event().wait(0.05)
        assert s.take_lease("k", me, "c", 60) is None  # expired: taken over
        won: list[str] = []

        def take(token: str) -> None:
            with open_trace_store(location) as t:
                if t.take_lease("race", me, token, 60) is None:
                    won.append(token)

        threads = [threading.Thread(target=take, args=(f"t{i}",)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1, won


CHECKS: list[Callable[[Location], None]] = [
    check_runs, check_events_are_ordered_and_append_only, check_concurrent_threads, check_concurrent_processes,
    check_kill_9_loses_nothing_returned, check_dead_process_run_is_interrupted, check_scores_and_frames,
    check_typed_reads, check_secrets_are_redacted, check_transactions_are_atomic, check_checkpoints, check_readonly,
    check_jsonl_round_trip, check_leases,
]
"""Every check, in the order to run them."""
