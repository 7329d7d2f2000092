"""A scripted batch for the executor tests and ``bench/cluster_bench.py``: tasks in real Docker sandboxes,
solved by a scripted ReAct agent that runs one shell command and submits its output.

The model is a function of the conversation (not of a position in a script), so a run resumed from a
checkpoint, on any node, carries on exactly where it stopped. This module is importable by name on the Ray
nodes the tests start (their ``PYTHONPATH`` holds this folder), so :func:`load_model` travels by reference.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import yaml

from lab.experiment import Experiment
from lab.models import ScriptedModel, ToolCall


def _reply(messages):
    tool_results = [m for m in messages if m.role == "tool"]
    if not tool_results:
        n, pause = re.search(r"number (\d+), pausing ([\d.]+) s", messages[1].content).groups()
        return ToolCall("", "shell", {"command": f"sleep {pause}; echo $(( {n} * {n} ))"})
    return ToolCall("", "submit", {"answer": tool_results[-1].content.split()[0]})


NODE_LOG = "LAB_TEST_NODE_LOG"
"""A folder where runs on the test cluster's nodes leave one file named after their Ray node each."""


def load_model(name: str) -> ScriptedModel:
    """The scripted agent (every model name gives the same one); on a test Ray node, notes the node."""
    log = os.environ.get(NODE_LOG)
    if log:
        import ray

        Path(log, f"{ray.get_runtime_context().get_node_id()}.{uuid.uuid4().hex[:8]}").touch()
    return ScriptedModel(_reply, name=name)


def write_tasks(folder: Path, n: int, *, pause: float = 0.0, gpu_variant: bool = False) -> Path:
    """Write ``n`` tasks (square a number in the sandbox's shell, after ``pause`` seconds) to a task file.

    Args:
        folder: Where the file goes.
        n: How many tasks.
        pause: Seconds each task's shell command sleeps first.
        gpu_variant: Add one task that declares a GPU.

    Returns:
        The task file.
    """
    tasks = [{"id": f"sq-{i}", "instructions": f"Square the number {i}, pausing {pause} s, with the shell.",
              "answer": str(i * i)} for i in range(1, n + 1)]
    if gpu_variant:
        tasks.append({**tasks[0], "id": "sq-gpu", "resources": {"cpus": 0.5, "memory_gb": 0.25, "gpus": 1}})
    doc = {"defaults": {"kind": "tools", "tools": ["shell"], "sandbox": {"image": "base"},
                        "resources": {"cpus": 0.5, "memory_gb": 0.25}, "budgets": {"steps": 4},
                        "scoring": {"scorer": "exact_match"}},
           "tasks": tasks}
    path = Path(folder) / "tasks.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def experiment(task_file: Path, *, name: str = "cluster", seeds: int = 1, concurrency: int = 4) -> Experiment:
    """The batch: every task × the scripted ReAct loop × ``seeds`` seeds (no per-step snapshots)."""
    return Experiment.from_dict({
        "name": name, "tasks": [{"path": str(task_file)}],
        "loops": [{"loop": "react", "options": {"snapshot_steps": False}}],
        "models": ["scripted-squarer"], "seeds": list(range(seeds)), "concurrency": concurrency,
    })
