"""Two `lab run --executor ray` drivers at once, on one experiment, into one PostgreSQL store, on a real two-node
Ray cluster on this machine: the workers write the store themselves; nothing is lost, no combination runs twice
(leases), and the store's password reaches no log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.traces.backend import open_trace_store

pytest.importorskip("ray")
pytestmark = pytest.mark.docker

sys.path.insert(0, str(Path(__file__).parent))
import workload  # noqa: E402  (tasks in Docker sandboxes)
from ray_nodes import LocalRayCluster  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LAB = str(Path(sys.executable).parent / "lab")
SECRET = "pw-7c1e9f"


def _need_base_image() -> None:
    from lab.sandbox.base import SandboxUnavailable
    from lab.sandbox.docker import docker_client

    try:
        if not docker_client().images.list(name="expertlab/base"):
            pytest.skip("no expertlab/base image (make images)")
    except SandboxUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def pg_url():
    """A throwaway PostgreSQL database; its URL carries a password (the test server trusts any)."""
    from lab.traces.pg_server import PostgresCluster, PostgresUnavailable

    try:
        server = PostgresCluster().start()
    except PostgresUnavailable as e:
        pytest.skip(str(e))
    try:
        yield server.new_database("raypg").replace("postgresql://lab@", f"postgresql://lab:{SECRET}@")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def cluster():
    c = LocalRayCluster(nodes=2, cpus=2, memory_gb=4)
    c.env["PYTHONPATH"] += f":{REPO}"  # workers import this tree's lab
    try:
        yield c.start()
    finally:
        c.stop()


def test_two_ray_drivers_into_one_postgresql_store(cluster, pg_url, tmp_path):
    """Both drivers submit every combination; runs last long enough (a 20 s shell command in a Docker sandbox)
    that the second driver's tasks find the first's leases held and report those combinations ``owned``."""
    _need_base_image()
    tasks = workload.write_tasks(tmp_path, 4)
    script = tmp_path / "script.json"
    script.write_text(json.dumps([
        {"tool_calls": [{"name": "shell", "arguments": {"command": "sleep 20; echo 4"}}]},
        {"tool_calls": [{"name": "submit", "arguments": {"answer": "4"}}]}]))
    exp = tmp_path / "exp.yaml"
    exp.write_text(json.dumps({"name": "raypg", "tasks": [{"path": str(tasks)}], "models": [f"scripted:{script}"],
                               "loops": [{"loop": "react", "options": {"snapshot_steps": False}}]}))
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    cmd = [LAB, "run", str(exp), "--store", pg_url, "--executor", "ray", "--address", cluster.address,
           "--no-progress"]
    drivers = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
               for _ in range(2)]
    outs = [d.communicate(timeout=600) for d in drivers]
    assert [d.returncode for d in drivers] == [0, 0], outs
    counts = [{k: int(v) for k, v in (w.split("=") for w in o.strip().splitlines()[-1].split()[:-1])}
              for o, _ in outs]
    assert sum(c.get("done", 0) for c in counts) == 4, outs  # each combination ran once, by one driver
    assert all(sum(c.values()) == 4 for c in counts), outs  # the rest owned by the other driver, or done by it
    assert sum(c.get("owned", 0) for c in counts) >= 1, outs  # the drivers overlapped: a lease was refused
    with open_trace_store(pg_url, readonly=True) as s:
        runs = s.list_runs()
        assert len(runs) == 4 and {r["status"] for r in runs} == {"done"}
        assert sorted(r["task"] for r in runs) == [f"sq-{i}" for i in range(1, 5)]
        for r in runs:
            events = s.events(r["run_id"])
            assert [e.seq for e in events] == list(range(len(events)))
            kinds = [e.kind for e in events]
            assert kinds[0] == "run_started" and {"sandbox_exec", "run_finished"} <= set(kinds), kinds
    assert all(SECRET not in o + e for o, e in outs) and all("store=postgresql://***@" in o for o, _ in outs)
    leaked = [p for p in cluster.tmp.rglob("*") if p.is_file() and not p.is_socket()
              and SECRET.encode() in p.read_bytes()]
    assert not leaked, leaked
