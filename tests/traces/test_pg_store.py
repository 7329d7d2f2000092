"""What only the PostgreSQL backend needs: URLs from --store and $LAB_STORE, a down server, writers on
several runs at once in opposite orders, racing run ids, and a database that is not a trace store."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lab.traces import Event, StoreError
from lab.traces.backend import open_trace_store
from lab.traces.pg_store import PostgresTraceStore, redact_url

REPO = Path(__file__).resolve().parents[2]

CROSS_WRITER = """
    import sys
    from lab.traces import Event
    from lab.traces.backend import open_trace_store
    store = open_trace_store(sys.argv[1], recover=False)
    runs = sys.argv[3:] if sys.argv[2] == "fwd" else sys.argv[3:][::-1]
    for i in range(60):
        store.append_many([Event(r, "agent_message", {"w": sys.argv[2], "i": i}) for r in runs])
    try:
        store.create_run({}, run_id="race")
        print("won")
    except Exception as e:
        print("lost:", e)
"""


def test_writers_of_several_runs_in_opposite_orders_neither_deadlock_nor_collide(pg_url):
    with open_trace_store(pg_url) as s:
        runs = [s.create_run({"task": f"r{k}"}) for k in range(5)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(CROSS_WRITER), pg_url, d, *runs],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for d in ("fwd", "rev", "fwd", "rev")]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    verdicts = sorted(o.strip().split(":")[0] for o, _ in outs)
    assert verdicts == ["lost", "lost", "lost", "won"]  # one run "race", three clear refusals
    assert all("run race already exists" in o for o, _ in outs if o.startswith("lost"))
    with open_trace_store(pg_url) as s:
        for r in runs:
            evs = s.events(r)
            assert [e.seq for e in evs] == list(range(240))
            for w in ("fwd", "rev"):
                assert sorted(e.attrs["i"] for e in evs if e.attrs["w"] == w) == sorted(list(range(60)) * 2)


def test_store_option_and_env_take_a_url(pg_url, lab, monkeypatch):
    with open_trace_store(pg_url) as s:
        rid = s.create_run({"task": "via-url", "agent": "solo"})
        s.append(Event(rid, "agent_message", {"content": "hi"}))
        s.finish_run(rid, "done")
    r = lab("runs", "list", "--store", pg_url, "--json")
    assert r.returncode == 0 and rid in r.stdout and "via-url" in r.stdout, r.stderr
    monkeypatch.setenv("LAB_STORE", pg_url)
    r = lab("runs", "list", "--json")
    assert r.returncode == 0 and rid in r.stdout, r.stderr


@pytest.mark.parametrize("url", ["postgresql://alice:hunter2pw@127.0.0.1:1/lab",
                                 "postgresql://alice:hunter2pw@127.0.0.1:1/lab?sslmode=disable"])
def test_down_server_is_one_line_without_the_password(url, lab):
    r = lab("runs", "list", "--store", url)
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "cannot reach the trace store postgresql://" in r.stderr and "127.0.0.1:1/lab" in r.stderr
    assert "hunter2pw" not in r.stderr
    assert "hunter2pw" not in redact_url(url) and redact_url(url).endswith("127.0.0.1:1/lab" + url.partition("/lab")[2])


def test_wrong_password_and_missing_database_are_clear(pg_cluster):
    bad_db = pg_cluster.url.rsplit("/", 1)[0] + "/nosuchdb"
    with pytest.raises(StoreError, match="cannot reach the trace store .*nosuchdb.*does not exist"):
        PostgresTraceStore(bad_db)


def test_a_database_without_a_store_is_not_read_as_one(pg_url, lab):
    r = lab("runs", "list", "--store", pg_url)
    assert r.returncode == 2 and "no trace store at postgresql://" in r.stderr and r.stderr.count("\n") == 1
    with pytest.raises(StoreError, match="no trace store at postgresql://.*no runs table"):
        open_trace_store(pg_url, readonly=True)
    open_trace_store(pg_url).close()  # opened for writing, the schema is made, once, even if opened again
    open_trace_store(pg_url).close()
    with open_trace_store(pg_url, readonly=True) as r:
        assert r.list_runs() == []


def test_truncate_is_refused_too(pg_url):
    with open_trace_store(pg_url) as s:
        rid = s.create_run({})
        s.append(Event(rid, "agent_message"))
        with pytest.raises(StoreError, match="append-only"):
            s.query("TRUNCATE events")
        assert s.count_events() == 1


def test_the_sqlite_class_refuses_a_url_instead_of_making_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = "postgresql://bob:hunter2pw@db.example/lab"
    for args in ([url], []):
        monkeypatch.setenv("LAB_STORE", url)
        with pytest.raises(StoreError, match="is a PostgreSQL store: open it with lab.traces.open_trace_store") as e:
            from lab.traces import TraceStore

            TraceStore(*args)
        assert "hunter2pw" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


OPEN_CHECKPOINTS = """
    import sys
    from lab.traces.checkpoints import checkpointer_for
    from lab.traces.backend import open_trace_store
    store = open_trace_store(sys.argv[1])
    print(store.checkpointer.get_tuple({"configurable": {"thread_id": "x", "checkpoint_ns": ""}}))
"""


def test_several_processes_set_up_the_checkpoints_of_a_new_database_at_once(pg_url):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(OPEN_CHECKPOINTS), pg_url],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [e for _, e in outs]
    assert [o.strip() for o, _ in outs] == ["None"] * 4


def test_store_pickles_as_its_url_and_reopens_elsewhere_with_secrets_out_of_messages(pg_url):
    """How a Ray worker gets a PostgreSQL store: unpickled, it opens its own connections to the same database;
    its repr, its path and any error name the URL without the password."""
    import pickle

    from lab.traces import pg_store

    url = pg_url.replace("postgresql://lab@", "postgresql://lab:pw-31c5@")
    with open_trace_store(url) as store:
        copy = pickle.loads(pickle.dumps(store))
        assert copy is not store and copy.url == url and copy._conn() is not store._conn()
        rid = copy.create_run(task="t", agent="a", model="m")
        copy.close()
        assert store.get_run(rid)["task"] == "t"
        assert "pw-31c5" not in repr(store) + str(store.path)
    with pytest.raises(StoreError) as e:
        pg_store._reopen("postgresql://lab:pw-31c5@127.0.0.1:1/x", False, "normal")
    assert "pw-31c5" not in str(e.value) and "127.0.0.1:1" in str(e.value)

