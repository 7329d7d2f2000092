"""Nothing lost: real writer processes killed with SIGKILL, and several writer processes at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from lab.traces import TraceStore

REPO = Path(__file__).resolve().parents[2]


def _spawn(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})


WRITER = """
    import sys
    from lab.traces import Event, TraceStore
    store = TraceStore(sys.argv[1])
    run_id = store.create_run({"task": "killed"})
    print(run_id, flush=True)
    i = 0
    while True:
        ev = store.append(Event(run_id, "agent_message", {"i": i, "pad": "x" * 200}))
        print(ev.seq, flush=True)
        i += 1
"""


def test_every_returned_append_survives_kill_9(tmp_path):
    db = tmp_path / "traces.db"
    proc = _spawn(WRITER, str(db))
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read()
    printed = [int(proc.stdout.readline()) for _ in range(300)]
    proc.send_signal(signal.SIGKILL)  # mid-way: it keeps appending until the signal lands
    rest, _ = proc.communicate(timeout=30)
    printed += [int(x) for x in rest.split()]
    assert proc.returncode == -signal.SIGKILL
    store = TraceStore(db)
    events = store.events(run_id)
    assert {e.seq for e in events} >= set(printed)
    assert [e.seq for e in events] == list(range(len(events)))  # gap-free, in order
    assert [e.attrs["i"] for e in events] == list(range(len(events)))
    run = store.get_run(run_id)
    assert run["status"] == "interrupted" and "stopped" in run["error"]


SLEEPER = """
    import sys, time
    from lab.traces import RunRecorder, TraceStore
    rec = RunRecorder.start(TraceStore(sys.argv[1]), {"task": "long"})
    rec.emit("agent_message", {"content": "working"})
    print(rec.run_id, flush=True)
    time.sleep(600)
"""


def test_run_of_a_dead_process_is_interrupted_on_next_open(tmp_path):
    db = tmp_path / "traces.db"
    proc = _spawn(SLEEPER, str(db))
    run_id = proc.stdout.readline().strip()
    assert run_id, proc.stderr.read()
    with TraceStore(db) as other:  # while the writer lives, its run stays running
        assert other.get_run(run_id)["status"] == "running"
    live = TraceStore(db).create_run({"task": "mine"})  # this process's own run is alive and is left alone
    proc.kill()
    proc.wait(timeout=30)
    store = TraceStore(db)
    run = store.get_run(run_id)
    assert run["status"] == "interrupted" and run["finished_at"] is not None
    assert [e.kind for e in store.events(run_id)] == ["run_started", "agent_message"]
    assert store.get_run(live)["status"] == "running"


MANY = """
    import sys
    from lab.traces import Event, TraceStore
    store = TraceStore(sys.argv[1])
    writer, shared, n = int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    own = store.create_run({"task": f"writer-{writer}"})
    print(own, flush=True)
    sys.stdin.readline()  # start together
    for j in range(n):
        if j % 10 == 0:
            store.append_many([Event(shared, "agent_message", {"w": writer, "j": j + k}) for k in range(10)])
        store.append(Event(own, "agent_message", {"w": writer, "j": j}))
"""


def test_concurrent_writer_processes_lose_and_reorder_nothing(tmp_path):
    db = tmp_path / "traces.db"
    store = TraceStore(db)
    shared = store.create_run({"task": "shared"})
    n, writers = 200, 4
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(MANY), str(db), str(w), shared, str(n)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)}) for w in range(writers)]
    own = [p.stdout.readline().strip() for p in procs]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    events = store.events(shared)
    assert [e.seq for e in events] == list(range(writers * n))
    for w in range(writers):
        assert [e.attrs["j"] for e in events if e.attrs["w"] == w] == list(range(n))
        mine = store.events(own[w])
        assert [e.attrs["j"] for e in mine] == list(range(n)) and [e.seq for e in mine] == list(range(n))
    batches = [tuple(e.attrs["w"] for e in events[i:i + 10]) for i in range(0, len(events), 10)]
    assert all(len(set(b)) == 1 for b in batches)  # a batch lands whole, never interleaved
