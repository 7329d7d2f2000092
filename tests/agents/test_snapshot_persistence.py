"""Runs and forks survive the process: step snapshots are kept as workdir archives beside the trace store, so a
Docker run killed mid-way resumes with its files, and a fork in a new process restores step N's files after
the parent's sandbox is gone; a fork that cannot restore fails before recording anything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lab.sandbox import SandboxSpec, open_sandbox
from lab.sandbox.snapshot_store import SnapshotStore
from lab.traces import TraceStore

LAB = str(Path(sys.executable).parent / "lab")
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


@pytest.fixture(scope="module")
def docker_base():
    from lab.sandbox import SandboxUnavailable

    try:
        from lab.sandbox.docker import docker_client

        docker_client()
    except SandboxUnavailable as e:
        pytest.skip(f"no Docker engine: {e}")
    from lab.sandbox.images import ensure_image

    ensure_image("base", log=lambda _line: None)


PARENT = """
import sys
from lab.agents.repo_setup import RepoSetupAgent
from lab.models import ScriptedModel, ToolCall
from lab.sandbox import SandboxSpec, open_sandbox
from lab.traces import TraceStore

store = TraceStore(sys.argv[1])
calls = [ToolCall("", "shell", {"command": "echo one > f1.txt"}),
         ToolCall("", "shell", {"command": "echo two > f2.txt"}),
         ToolCall("", "submit", {"answer": "done"})]
sb = open_sandbox(SandboxSpec(image="expertlab/base", backend=sys.argv[2]))
run = RepoSetupAgent(ScriptedModel(calls)).start(store, "write two files", sandbox=sb)
print(run.run().status, run.run_id)
sb.close()
"""

FORK = """
import sys
from lab.agents.repo_setup import RepoSetupAgent
from lab.agents.run import AgentError, AgentRun
from lab.models import ScriptedModel, ToolCall
from lab.sandbox import SandboxSpec, open_sandbox
from lab.traces import TraceStore

store = TraceStore(sys.argv[1])
agent = RepoSetupAgent(ScriptedModel([ToolCall("", "shell", {"command": "ls; cat f1.txt"}),
                                      ToolCall("", "submit", {"answer": "forked"})]))
parent = AgentRun.attach(store, sys.argv[3], agent)
n = len(store.list_runs())
try:
    parent.fork(1)
except AgentError as e:
    print("REFUSED", e, len(store.list_runs()) == n)
with open_sandbox(SandboxSpec(image="expertlab/base", backend=sys.argv[2])) as sb:
    child = parent.fork(1, sandbox=sb)
    print("FILES", sorted(p for p in sb.exec("ls").stdout.split()))
    print(child.run().status, child.run_id)
"""


@pytest.mark.parametrize("backend", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_fork_in_a_fresh_process_after_the_parent_closed_restores_step_files(tmp_path, backend, request):
    if backend == "docker":
        request.getfixturevalue("docker_base")
    db = str(tmp_path / "traces.db")
    p = subprocess.run([sys.executable, "-c", PARENT, db, backend], capture_output=True, text=True, env=ENV,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    status, run_id = p.stdout.split()[-2:]
    assert status == "done"
    f = subprocess.run([sys.executable, "-c", FORK, db, backend, run_id], capture_output=True, text=True, env=ENV,
                       timeout=300)
    assert f.returncode == 0, f.stderr
    lines = f.stdout.splitlines()
    refused = next(line for line in lines if line.startswith("REFUSED"))
    assert "no sandbox was given; pass sandbox=" in refused and refused.endswith("True")  # nothing recorded
    assert next(line for line in lines if line.startswith("FILES")) == "FILES ['f1.txt']"  # step 1: f1, not f2
    store = TraceStore(db)
    child = store.get_run(lines[-1].split()[-1])
    assert (child["status"], child["parent_run_id"], child["fork_step"]) == ("done", run_id, 1)
    first = [e.attrs["content"] for e in store.events(child["run_id"], kinds=["tool_result"])][0]
    assert "one" in first


def test_fork_whose_snapshot_and_archive_are_gone_fails_before_recording(tmp_path):
    from lab.agents.repo_setup import RepoSetupAgent
    from lab.models import ScriptedModel, ToolCall
    from lab.sandbox.base import SandboxError

    store = TraceStore(tmp_path / "traces.db")
    calls = [ToolCall("", "shell", {"command": "echo one > f1.txt"}), ToolCall("", "submit", {"answer": "x"})]
    with open_sandbox(SandboxSpec(image="expertlab/base", backend="local")) as sb:
        run = RepoSetupAgent(ScriptedModel(calls)).start(store, "x", sandbox=sb)
        run.run()
    SnapshotStore.beside(store.path).remove()
    n = len(store.list_runs())
    with open_sandbox(SandboxSpec(image="expertlab/base", backend="local")) as sb2:
        with pytest.raises(SandboxError, match="gone"):
            run.fork(1, sandbox=sb2)
        with pytest.raises(Exception, match="its sandbox is closed"):
            run.fork(1)
    assert len(store.list_runs()) == n


def test_unchanged_workdir_adds_no_archive_and_gc_drops_oldest_finished_first(tmp_path):
    store = TraceStore(tmp_path / "traces.db")
    snaps = SnapshotStore.beside(store.path)
    ids = [store.create_run({"task": f"t{i}"}) for i in range(3)]
    with open_sandbox(SandboxSpec(image="expertlab/base", backend="local")) as sb:
        for i, rid in enumerate(ids):
            sb.write_file(f"data{i}.bin", os.urandom(20_000))
            a = snaps.save(sb, rid)
            assert snaps.save(sb, rid) == a  # nothing changed: the same archive, no new one
    assert len(list((snaps.root / "objects").glob("*.tar"))) == 3
    size = snaps.size()
    for rid in ids[:2]:
        store.finish_run(rid, "done")
    dropped, freed = snaps.gc(store, cap=size - 1)  # one finished run must go: the oldest
    assert dropped == [ids[0]] and freed > 0 and snaps.runs() == sorted(ids[1:])
    dropped, _ = snaps.gc(store, cap=0)  # the running run keeps its archive whatever the cap
    assert dropped == [ids[1]] and snaps.runs() == [ids[2]]
    out = subprocess.run([LAB, "sandbox", "ls", "--store", str(store.path)], capture_output=True, text=True,
                         env=ENV, timeout=120)
    assert f"snapshots  {snaps.root}  {snaps.size()} bytes" in out.stdout


@pytest.mark.docker
def test_docker_run_killed_mid_way_resumes_with_its_files(tmp_path, docker_base):
    step = 'n=$(ls | wc -l); echo "$n" > "f$n.txt"; sleep 0.5; echo files: $(ls)'
    calls = [{"tool_calls": [{"name": "shell", "arguments": {"command": step}}]} for _ in range(8)]
    calls.append({"tool_calls": [{"name": "submit", "arguments": {"answer": "ok"}}]})
    (tmp_path / "script.json").write_text(json.dumps({"replies": calls, "cycle": True}))
    (tmp_path / "tasks.yaml").write_text(textwrap.dedent("""\
        tasks:
          - {id: files, kind: repo, instructions: x, sandbox: {image: base}, scoring: {scorer: exact_match}, answer: ok}
        """))
    (tmp_path / "exp.yaml").write_text(f"name: crash\ntasks: [./tasks.yaml]\nloops: [repo_setup]\n"
                                       f"models: ['scripted:{tmp_path / 'script.json'}']\n")
    db = tmp_path / "traces.db"
    cmd = [LAB, "run", str(tmp_path / "exp.yaml"), "--store", str(db), "--no-progress"]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    deadline = time.time() + 240
    before: list = []
    while time.time() < deadline and len(before) < 3:
        time.sleep(0.3)
        if db.exists():
            st = TraceStore(db, readonly=True)
            runs = st.list_runs()
            before = st.events(runs[0]["run_id"], kinds=["tool_result"]) if runs else []
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    store = TraceStore(db, recover=False)
    (run,) = store.list_runs()
    before = store.events(run["run_id"], kinds=["tool_result"])
    assert len(before) >= 3
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=ENV)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    (after_run,) = store.list_runs()
    assert (after_run["run_id"], after_run["status"]) == (run["run_id"], "done")  # resumed, not started over
    results = [e.attrs["content"] for e in store.events(run["run_id"], kinds=["tool_result"])]
    resumed = results[len(before)]  # the first step after the resume saw the files written before the kill
    assert "f0.txt f1.txt" in resumed, resumed
    assert results[:len(before)] == [e.attrs["content"] for e in before]


@pytest.mark.docker
def test_dashboard_fork_opens_the_task_sandbox_with_the_step_files(tmp_path, store, docker_base):
    """The trace viewer's fork (widgets.fork.fork_run) works in a new sandbox of the task, step 1's files
    restored from the snapshot store after the parent's sandbox was removed."""
    from lab.experiment import Experiment
    from lab.runner import Runner
    from lab.sandbox.images import ensure_image
    from widgets.fork import fork_run

    ensure_image("repo-setup", log=lambda _line: None)

    def script(name: str, calls: list[dict]) -> str:
        (tmp_path / name).write_text(json.dumps([{"tool_calls": [c]} for c in calls]))
        return f"scripted:{tmp_path / name}"

    parent_model = script("parent.json", [{"name": "shell", "arguments": {"command": "echo one > f1.txt"}},
                                          {"name": "shell", "arguments": {"command": "echo two > f2.txt"}},
                                          {"name": "submit", "arguments": {"answer": "x"}}])
    exp = Experiment.from_dict({"name": "dash", "tasks": ["repo-setup/tinyclf-pinned-version"],
                                "loops": ["repo_setup"], "models": [parent_model], "task_scoring": False})
    (o,) = Runner(store, progress=False).run(exp).outcomes
    assert o.status == "done", o.error
    child_model = script("child.json", [{"name": "shell", "arguments": {"command": "ls"}},
                                        {"name": "submit", "arguments": {"answer": "y"}}])
    child = fork_run(store, o.run_id, 1, model=child_model, background=False)
    row = store.get_run(child)
    assert (row["status"], row["parent_run_id"]) == ("done", o.run_id)
    listing = [e.attrs["content"] for e in store.events(child, kinds=["tool_result"])][0]
    assert "f1.txt" in listing and "tinyclf" in listing and "f2.txt" not in listing
