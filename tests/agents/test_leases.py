"""One live owner per combination: two `lab run` processes on one experiment never run a combination twice,
and a rerun after `kill -9` of the first takes its leases over and resumes its runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from lab.leases import Lease
from lab.traces import TraceStore

LAB = str(Path(sys.executable).parent / "lab")
ROOT = Path(__file__).resolve().parents[2]


def _experiment(tmp_path: Path, *, tasks: int, steps: int, concurrency: int) -> list[str]:
    """An experiment of ``tasks`` local-sandbox tasks, each ``steps`` slow shell steps by a scripted model."""
    calls = [{"tool_calls": [{"name": "shell", "arguments": {"command": f"sleep 0.4; echo step{i}"}}]}
             for i in range(steps)]
    calls.append({"tool_calls": [{"name": "submit", "arguments": {"answer": "ok"}}]})
    (tmp_path / "script.json").write_text(json.dumps({"cycle": True, "replies": calls}))
    lines = ["tasks:"] + [f"  - {{id: t{i}, kind: repo, instructions: x, sandbox: {{image: base}}, "
                          "scoring: {scorer: exact_match}, answer: ok}" for i in range(tasks)]
    (tmp_path / "tasks.yaml").write_text("\n".join(lines) + "\n")
    (tmp_path / "exp.yaml").write_text(
        f"name: leases\ntasks: [./tasks.yaml]\nsandbox_backend: local\nconcurrency: {concurrency}\n"
        "loops: [{loop: repo_setup, options: {snapshot_steps: false}}]\n"
        f"models: ['scripted:{tmp_path / 'script.json'}']\n")
    return [LAB, "run", str(tmp_path / "exp.yaml"), "--store", str(tmp_path / "traces.db"), "--no-progress"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def _runs_by_combo(store: TraceStore) -> Counter:
    return Counter(r["config"]["combo"] for r in store.list_runs() if r["parent_run_id"] is None)


def test_two_lab_runs_at_once_run_each_combination_once(tmp_path):
    cmd = _experiment(tmp_path, tasks=4, steps=2, concurrency=1)
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    time.sleep(0.5)
    second = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    out = [p.communicate(timeout=300) for p in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, out
    store = TraceStore(tmp_path / "traces.db")
    counts = _runs_by_combo(store)
    assert len(counts) == 4 and set(counts.values()) == {1}, counts  # no combination ran twice
    assert all(r["status"] == "done" for r in store.list_runs())
    assert "owned" in out[0][0] + out[1][0]  # one of them found a combination the other was running
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=_env())
    assert again.returncode == 0 and "skipped=4" in again.stdout


def test_wait_takes_over_what_the_other_runner_finished(tmp_path):
    cmd = _experiment(tmp_path, tasks=2, steps=2, concurrency=2)
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    time.sleep(1.0)
    waited = subprocess.run([*cmd, "--wait"], capture_output=True, text=True, timeout=300, env=_env())
    first.communicate(timeout=300)
    assert waited.returncode == 0, waited.stderr
    assert "owned" not in waited.stdout
    assert set(_runs_by_combo(TraceStore(tmp_path / "traces.db")).values()) == {1}


def test_kill_9_then_rerun_resumes_the_dead_runners_runs(tmp_path):
    cmd = _experiment(tmp_path, tasks=2, steps=8, concurrency=2)
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    db = tmp_path / "traces.db"
    deadline = time.time() + 120
    while time.time() < deadline:  # both runs past their second step
        time.sleep(0.3)
        if db.exists():
            st = TraceStore(db, readonly=True)
            runs = st.list_runs()
            if len(runs) == 2 and all(len(st.events(r["run_id"], kinds=["tool_result"])) >= 2 for r in runs):
                break
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    store = TraceStore(db, recover=False)
    before = {r["run_id"]: store.events(r["run_id"], kinds=["tool_result"]) for r in store.list_runs()}
    assert len(before) == 2 and all(len(evs) >= 2 for evs in before.values())
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_env())
    assert rerun.returncode == 0, rerun.stderr
    runs = store.list_runs()
    assert {r["run_id"] for r in runs} == set(before)  # the same runs, resumed, no new ones
    assert all(r["status"] == "done" for r in runs)
    for rid, evs in before.items():  # continued after what was recorded (each process replays the script anew)
        after = store.events(rid, kinds=["tool_result"])
        assert [e.seq for e in after[:len(evs)]] == [e.seq for e in evs] and len(after) > len(evs)


def test_lease_is_exclusive_until_released_or_its_owner_is_gone(tmp_path):
    store = TraceStore(tmp_path / "t.db")
    a, b = Lease(store, "k", ttl=30), Lease(store, "k", ttl=30)
    assert a.take() and not b.take() and b.holder == a.owner
    a.release()
    assert b.take()
    b.release()
    store.take_lease("k", "somehost-gone:1:1", "tok", 30)  # another host: alive until it expires
    assert Lease(store, "k").take() is False
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.take_lease("j", f"{os.uname().nodename}:{dead.pid}:1", "tok", 30)  # this host, process gone
    assert Lease(store, "j", ttl=30).take()
    store.take_lease("e", "somehost-gone:1:1", "tok", -1)  # expired
    assert Lease(store, "e", ttl=30).take()


def test_the_cluster_store_actor_serves_leases(tmp_path):
    """Cluster workers take leases through the store actor (a StoreSink; called here without Ray)."""
    from lab.executors.remote_store import StoreSink

    sink = StoreSink(str(tmp_path / "t.db"))
    assert sink.store_call("take_lease", ("k", "otherhost:1:1", "a", 30.0), {}) is None
    assert sink.store_call("take_lease", ("k", "otherhost:2:1", "b", 30.0), {}) == "otherhost:1:1"
    assert sink.store_call("renew_lease", ("k", "a", 30.0), {}) is True
    sink.store_call("release_lease", ("k", "a"), {})
    assert sink.store_call("take_lease", ("k", "otherhost:2:1", "b", 30.0), {}) is None
