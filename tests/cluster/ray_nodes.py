"""A real Ray cluster on this machine: a head and more nodes, each a separate ``ray start --block`` process on
loopback with its own CPUs, memory and object store. Used by the cluster tests and ``bench/cluster_bench.py``.

Everything it starts is stopped by process id (never ``ray stop``, which ends every Ray process on the machine).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
_START_TIMEOUT = 240.0


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (parents first)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@dataclass
class Node:
    """One ``ray start --block`` process and what it started."""

    proc: subprocess.Popen
    log: Path
    port: int
    pids: set[int] = field(default_factory=set)

    def refresh(self) -> None:
        """Remember every process of this node (so they can be stopped after their parents die)."""
        if self.proc.poll() is None:
            self.pids.update(process_tree(self.proc.pid))

    def raylet_pid(self) -> int:
        """The node's raylet."""
        for p in process_tree(self.proc.pid):
            if _comm(p) == "raylet":
                return p
        raise RuntimeError(f"no raylet under ray start pid {self.proc.pid}")


class LocalRayCluster:
    """A Ray head plus ``nodes - 1`` more nodes on 127.0.0.1, as separate processes.

    Args:
        nodes: Nodes in all, the head included.
        cpus: Logical CPUs per node.
        memory_gb: Ray ``--memory`` per node (set, so nodes on one machine do not each claim all of it).
        object_store_mb: Ray ``--object-store-memory`` per node.
        resources: Extra custom resources of the non-head nodes.
    """

    def __init__(self, *, nodes: int = 2, cpus: int = 2, memory_gb: float = 4.0, object_store_mb: int = 100) -> None:
        self.cpus, self.memory_gb, self.object_store_mb = cpus, memory_gb, object_store_mb
        self.n = nodes
        self.tmp = Path(tempfile.mkdtemp(prefix="lr", dir="/tmp"))  # short: Ray's socket paths are length-limited
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.nodes: list[Node] = []
        # Ray 2.60's raylet gives its dashboard agent a fixed 15 s to start. On a loaded 2-core machine the agent's
        # imports alone can take longer, most of it jsonschema compiling the grammar of its optional IRI format
        # checker (rfc3987_syntax, ~4 s of CPU). The nodes' processes do without that checker.
        shim = self.tmp / "shim" / "rfc3987_syntax"
        shim.mkdir(parents=True)
        (shim / "__init__.py").write_text("raise ImportError('not loaded on lab test Ray nodes')\n")
        here = Path(__file__).resolve().parent  # workload.py travels by reference: workers import it from here
        self.node_log = self.tmp / "runs-on"
        self.node_log.mkdir()
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": f"{shim.parent}:{here}",
                    "LAB_TEST_NODE_LOG": str(self.node_log)}

    def _start(self, args: list[str]) -> Node:
        log = self.tmp / f"node{len(self.nodes)}.log"
        port = free_port()
        ports = ["--node-ip-address=127.0.0.1", f"--num-cpus={self.cpus}",
                 f"--memory={int(self.memory_gb * 2**30)}", f"--object-store-memory={self.object_store_mb * 2**20}",
                 f"--dashboard-agent-listen-port={free_port()}", f"--dashboard-agent-grpc-port={free_port()}",
                 f"--runtime-env-agent-port={free_port()}", f"--metrics-export-port={free_port()}",
                 f"--node-manager-port={port}", f"--object-manager-port={free_port()}",
                 "--disable-usage-stats"]
        with open(log, "wb") as out:
            proc = subprocess.Popen([RAY, "start", "--block", *args, *ports], env=self.env, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, cwd=self.tmp)
        node = Node(proc, log, port)
        self.nodes.append(node)
        deadline = time.monotonic() + _START_TIMEOUT
        while b"Ray runtime started" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-1500:]
                self._kill(node)
                self.nodes.remove(node)
                raise RuntimeError(f"ray start {' '.join(args)} failed:\n{tail}")
            time.sleep(0.3)
        node.refresh()
        return node

    def start(self, attempts: int = 3) -> LocalRayCluster:
        """Start the head, then the other nodes (each retried: a loaded machine can miss Ray's start-up
        deadlines); returns when all are up."""
        self._retry(lambda: self._start(["--head", f"--port={self.port}", "--include-dashboard=false",
                                        f"--dashboard-port={free_port()}",
                                        f"--temp-dir={self.tmp / 't'}"]), attempts)
        for _ in range(self.n - 1):
            self.add_node(attempts)
        return self

    def add_node(self, attempts: int = 3) -> Node:
        """Start one more node joining the head."""
        return self._retry(lambda: self._start([f"--address={self.address}"]), attempts)

    @staticmethod
    def _retry(fn, attempts: int):
        for i in range(attempts):
            try:
                return fn()
            except RuntimeError:
                if i == attempts - 1:
                    raise
        return None

    def node_id(self, index: int) -> str:
        """The Ray node id of node ``index`` (needs ``ray.init`` in this process)."""
        import ray

        return next(n["NodeID"] for n in ray.nodes() if n["NodeManagerPort"] == self.nodes[index].port)

    def runs_on(self, index: int) -> int:
        """How many runs (model loads of :mod:`workload`) node ``index`` has started."""
        prefix = self.node_id(index)
        return sum(1 for f in self.node_log.iterdir() if f.name.startswith(prefix))

    def kill_node(self, index: int) -> None:
        """``kill -9`` the raylet of node ``index`` (1 is the first non-head node): the node dies."""
        node = self.nodes[index]
        node.refresh()
        os.kill(node.raylet_pid(), signal.SIGKILL)

    def _kill(self, node: Node) -> None:
        node.refresh()
        for pid in sorted(node.pids, reverse=True):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            node.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def stop(self) -> None:
        """Stop every process this cluster started, by pid (worker nodes first), and remove its files."""
        for node in self.nodes:
            node.refresh()
        for node in reversed(self.nodes):
            self._kill(node)
        self.nodes.clear()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
