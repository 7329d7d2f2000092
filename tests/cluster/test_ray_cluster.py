"""The Ray executor on a real two-node Ray cluster on this machine (a head and a second node, separate
``ray start`` processes on loopback), with real Docker sandboxes: the same store as the local executor, runs on
both nodes, events streaming in while runs go on, a node killed mid-batch (``kill -9`` of its raylet) and the
batch resumed to completion, and ``lab run --executor ray``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lab.executors import RayExecutor
from lab.runner import Runner
from lab.traces import TraceStore

pytest.importorskip("ray")
pytestmark = pytest.mark.docker

sys.path.insert(0, str(Path(__file__).parent))
import workload  # noqa: E402  (workers import it by this name too)
from ray_nodes import LocalRayCluster  # noqa: E402

LAB = str(Path(sys.executable).parent / "lab")
VOLATILE = {"lab.sandbox.id", "lab.sandbox.duration", "lab.latency_s", "lab.duration_s"}


@pytest.fixture(scope="module")
def cluster():
    from lab.sandbox.base import SandboxUnavailable
    from lab.sandbox.docker import docker_client

    try:
        if not docker_client().images.list(name="expertlab/base"):
            pytest.skip("no expertlab/base image (make images)")
    except SandboxUnavailable as e:
        pytest.skip(str(e))
    import ray

    c = LocalRayCluster(nodes=2, cpus=2, memory_gb=4)
    try:
        c.start()
        ray.init(address=c.address, log_to_driver=False)
        yield c
    finally:
        ray.shutdown()
        c.stop()


def digest(store: TraceStore) -> list[dict]:
    """The store's runs, events and scores without what differs between two executions of the same batch
    (run and span ids, times, sandbox ids, whether the git tree was clean), runs in (task, seed) order."""
    out = []
    for run in sorted(store.list_runs(), key=lambda r: (r["task"], r["seed"])):
        spans: dict[str | None, str | None] = {None: None}
        events = []
        for e in store.events(run["run_id"]):
            for sid in (e.span_id, e.parent_id):
                spans.setdefault(sid, f"s{len(spans)}")
            attrs = {k: v for k, v in e.attrs.items() if k not in VOLATILE}
            if "lab.provenance" in attrs:  # the tree may be edited between the two executions
                prov = attrs["lab.provenance"]
                attrs["lab.provenance"] = {**prov, "lab": {k: v for k, v in prov.get("lab", {}).items()
                                                           if k != "dirty"}}
            events.append((e.seq, e.kind, e.agent, spans[e.span_id], spans[e.parent_id], attrs))
        scores = store.query("SELECT scorer, dimension, value, label, provenance, final FROM scores WHERE run_id=?"
                             " ORDER BY seq", (run["run_id"],))
        keep = ("task", "agent", "model", "seed", "status", "error", "batch_id", "config", "parent_run_id")
        out.append({**{k: run[k] for k in keep}, "events": events, "scores": scores})
    return out


def test_two_nodes_as_separate_processes_on_this_machine(cluster):
    """Both nodes were started with ``--node-ip-address=127.0.0.1``; Ray 2.60 registers a node under the
    machine's routable address instead of loopback, the same for both."""
    import ray

    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 2 and len({n["NodeManagerAddress"] for n in nodes}) == 1
    assert {n["NodeManagerPort"] for n in nodes} == {node.port for node in cluster.nodes}
    assert len({node.proc.pid for node in cluster.nodes}) == 2


def test_same_store_as_local_executor_and_runs_on_both_nodes(cluster, tmp_path):
    exp = workload.experiment(workload.write_tasks(tmp_path, 6, gpu_variant=True), seeds=2)
    local, remote = TraceStore(tmp_path / "local.db"), TraceStore(tmp_path / "ray.db")
    a = Runner(local, progress=False, model_loader=workload.load_model).run(exp)
    b = Runner(remote, progress=False, model_loader=workload.load_model, executor=RayExecutor(cluster.address)).run(exp)

    assert [o.status for o in a.outcomes] == [o.status for o in b.outcomes]
    assert b.count("done") == 12 and all(o.scores == {"exact_match": 1.0} for o in b.outcomes if o.status == "done")
    gpu = [o for o in b.outcomes if o.task.endswith("sq-gpu")]
    assert [o.status for o in gpu] == ["unavailable"] * 2 and "needs 1 GPU(s)" in gpu[0].error
    assert all(o.status == "unavailable" and "needs 1 GPU(s)" in o.error
               for o in a.outcomes if o.task.endswith("sq-gpu"))
    assert digest(local) == digest(remote)
    assert cluster.runs_on(0) > 0 and cluster.runs_on(1) > 0, "runs should spread over both nodes"


def test_node_killed_mid_batch_then_resumed(cluster, tmp_path):
    """Kill -9 the second node's raylet while runs are on it: those runs end ``interrupted`` with the reason,
    everything they recorded stays; the batch resumed finishes every combination."""
    exp = workload.experiment(workload.write_tasks(tmp_path, 8, pause=8), seeds=1)
    store = TraceStore(tmp_path / "traces.db")
    before = cluster.runs_on(1)
    result: dict = {}
    batch = threading.Thread(target=lambda: result.setdefault("first", Runner(
        store, progress=False, model_loader=workload.load_model, executor=RayExecutor(cluster.address)).run(exp)))
    batch.start()
    deadline = time.monotonic() + 180
    while cluster.runs_on(1) == before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cluster.runs_on(1) > before, "no run reached the second node"
    time.sleep(4)  # its run is in its sandbox now
    # events of runs still going on are already in the driver's store
    running = store.list_runs(status="running")
    assert running and max(store.count_events(r["run_id"]) for r in running) >= 3
    cluster.kill_node(1)
    batch.join(timeout=300)
    assert not batch.is_alive()
    first = result["first"]
    lost = [o for o in first.outcomes if o.status == "interrupted"]
    assert lost and all("was lost (NodeDiedError" in o.error or "was lost (WorkerCrashedError" in o.error
                        for o in lost)
    assert first.count("done") + len(lost) == 8
    for o in lost:
        if o.run_id:  # a run the node had started: interrupted in the store, with the reason as its last event
            run = store.get_run(o.run_id)
            assert run["status"] == "interrupted" and run["error"] == o.error
            assert store.events(o.run_id)[-1].attrs["error.where"] == "executor"

    second = Runner(store, progress=False, model_loader=workload.load_model,
                    executor=RayExecutor(cluster.address)).run(exp)
    assert second.count("skipped") == first.count("done") and second.count("done") == len(lost)
    assert all(o.scores == {"exact_match": 1.0} for o in second.outcomes)
    for run in store.list_runs():  # every run's events are gap-free and in order
        assert [e.seq for e in store.events(run["run_id"])] == list(range(store.count_events(run["run_id"])))
    cluster.add_node()  # the cluster has two nodes again for what follows


def test_lab_run_with_ray_executor(cluster, tmp_path):
    tasks = workload.write_tasks(tmp_path, 2)
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"tool_calls": [{"name": "shell", "arguments": {"command": "echo $((2 * 2))"}}]},
                                  {"tool_calls": [{"name": "submit", "arguments": {"answer": "4"}}]}]))
    (tmp_path / "exp.yaml").write_text(json.dumps({
        "name": "cli", "tasks": [{"path": str(tasks)}], "models": [f"scripted:{script}"],
        "loops": [{"loop": "react", "options": {"snapshot_steps": False}}]}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [LAB, "run", str(tmp_path / "exp.yaml"), "--store", str(tmp_path / "t.db"), "--no-progress"]
    r = subprocess.run([*cmd, "--executor", "ray", "--address", cluster.address], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("done ") == 2 and "exact_match=1" in r.stdout and "exact_match=0" in r.stdout
    runs = TraceStore(tmp_path / "t.db").list_runs()
    assert [r["status"] for r in runs] == ["done", "done"]
    bad = subprocess.run([*cmd, "--executor", "warp"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode != 0 and "unknown executor 'warp'" in bad.stdout + bad.stderr


def test_notebook_launcher_on_the_cluster(cluster, tmp_path):
    from widgets import RunConfig, RunLauncher

    reply = {"answer": "ceftriaxone", "explanation": "x", "message": "ok", "done": True, "final": True}
    script = tmp_path / "s.json"
    script.write_text(json.dumps({"replies": [json.dumps(reply)], "cycle": True}))
    cfg = RunConfig(experiment="nb", loop="dera", models=[f"scripted:{script}"], max_steps=2, task_scoring=False,
                    executor="ray", address=cluster.address)
    cfg.load_choices()
    cfg.suite = "medqa-open"
    cfg.tasks = cfg.param.tasks.objects[:2]
    store = TraceStore(tmp_path / "nb.db")
    launcher = RunLauncher(store, cfg)
    assert launcher.start(wait=True) == "exp:nb"
    assert launcher.status.startswith("finished: 2 done") and set(launcher.progress()["status"]) == {"done"}
    assert RunConfig.load(cfg.save(tmp_path / "cfg.json")).executor == "ray"


def test_stopping_a_batch_pauses_its_runs_like_ctrl_c_locally(cluster, tmp_path):
    """What Ctrl-C does to a Ray batch: running runs pause at their next step (``interrupted``, resumable),
    the others do not start; nothing is marked failed, and the batch resumed finishes."""
    exp = workload.experiment(workload.write_tasks(tmp_path, 10, pause=6), seeds=1)
    store = TraceStore(tmp_path / "traces.db")
    runner = Runner(store, progress=False, model_loader=workload.load_model, executor=RayExecutor(cluster.address))
    batch = runner.executor.start(runner.context(exp), 4)
    futures = [batch.submit(c, c.key(exp), None) for c in exp.combos()]
    deadline = time.monotonic() + 120
    while len(store.list_runs(status="running")) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    batch.shutdown(cancel=True)
    outcomes = [f.result() for f in futures]
    assert "interrupted" in {o.status for o in outcomes} and not {o.status for o in outcomes} - {"done", "interrupted"}
    assert {(r["status"], r["error"]) for r in store.list_runs()} <= {("done", None), ("interrupted", "paused")}
    again = runner.run(exp)
    assert again.count("done") + again.count("skipped") == 10
