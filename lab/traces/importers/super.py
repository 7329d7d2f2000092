"""Import SUPER agent trajectories (allenai/super-benchmark) as runs.

Layout: ``ROOT/<model>_<agent>_<split>/<task>/metrics.json`` and, for some tasks, ``history.ipynb``.
Each task folder becomes one finished run: ``run_started`` (query and prompt), one ``tool_call`` event per
agent step (thought, action, observation, execution time), the published metrics as final scores
under their file names (``submitted``, ``output_match``, ``checkpoints`` — the paper's landmarks —,
``entrypoint``; provenance ``rule``, source ``super``), and ``run_finished``. A task folder holding only
``metrics.json`` becomes a run with scores and no steps.

SUPER notebooks record times of day but no dates: event ``ts`` is the import time plus the step's
offset from the first step, and ``elapsed`` is the offset of the step's end.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lab.traces.schema as schema
from lab.traces.errors import TraceImportError
from lab.traces.files import read_json
from lab.traces.schema import Event, EventData, Score
from lab.traces.store import TraceStore, score_event

SOURCE = "super"
_STEP = re.compile(r"^### Step (\d+)\s*$")
_SECTION = re.compile(r"^### (.+?)\s*\n")
_EXEC = re.compile(r"Execution Start time: (\d\d):(\d\d):(\d\d), End time: (\d\d):(\d\d):(\d\d)"
                   r" \(duration: (\d+) seconds\)")
_THOUGHT = re.compile(r"^\*\*Thought\*\*: ?(.*)\Z", re.S)
_ACTION = re.compile(r"^\*\*Action \((\w+)\)\*\*:")
PRE_EXECUTED = "[pre-executed by user]"


@dataclass
class Step:
    """One agent step of a SUPER notebook."""

    number: int
    thought: str = ""
    action_type: str | None = None
    action: str = ""
    observation: str = ""
    start: int | None = None  # seconds since midnight
    end: int | None = None
    duration: float | None = None


@dataclass
class Trajectory:
    """A parsed ``history.ipynb``: run-level sections (query, prompt ...) and steps."""

    sections: dict[str, str] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)


def _text(source: Any) -> str:
    return "".join(map(str, source)) if isinstance(source, list) else str(source)


def _outputs(outputs: list[dict[str, Any]]) -> str:
    parts = []
    for out in outputs:
        data = out.get("data")
        if "text" in out:
            parts.append(_text(out["text"]))
        elif isinstance(data, dict) and "text/plain" in data:
            parts.append(_text(data["text/plain"]))
        elif isinstance(out.get("traceback"), list):
            parts.append("\n".join(map(str, out["traceback"])))
    return "".join(parts)


def parse_history(path: str | os.PathLike[str]) -> Trajectory:
    """Parse a SUPER ``history.ipynb`` into run-level sections and agent steps.

    Raises:
        TraceImportError: The file is not a notebook (message names it).
    """
    path = Path(path)
    nb = read_json(path)
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list):
        raise TraceImportError(f"{path}: not a notebook (no list of 'cells')")
    traj = Trajectory()
    step: Step | None = None
    for i, cell in enumerate(cells):
        if not isinstance(cell, dict) or not isinstance(cell.get("source"), (str, list)):
            raise TraceImportError(f"{path}: field 'cells.{i}.source': missing or not text")
        if isinstance(cell["source"], list) and not all(isinstance(x, str) for x in cell["source"]):
            raise TraceImportError(f"{path}: field 'cells.{i}.source': not a list of text lines")
        outputs = cell.get("outputs") or []
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise TraceImportError(f"{path}: field 'cells.{i}.outputs': not a list of objects")
        src = _text(cell["source"])
        if cell.get("cell_type") == "code":
            if step is None:
                continue
            step.action += src
            step.observation += _outputs(cell.get("outputs") or [])
            continue
        if m := _STEP.match(src):
            step = Step(int(m.group(1)))
            traj.steps.append(step)
        elif step is None and (m := _SECTION.match(src)):
            key = m.group(1).strip().lower().replace(" ", "_")
            traj.sections[key] = src[m.end():].removeprefix("<details>\n").removesuffix("</details>").strip()
        elif step is None:
            continue
        elif m := _EXEC.search(src):
            h1, m1, s1, h2, m2, s2, d = map(int, m.groups())
            step.start, step.end, step.duration = h1 * 3600 + m1 * 60 + s1, h2 * 3600 + m2 * 60 + s2, float(d)
        elif m := _THOUGHT.match(src):
            step.thought = m.group(1).strip()
        elif m := _ACTION.match(src):
            step.action_type = None if m.group(1) == "None" else m.group(1)
    return traj


def _metrics(path: Path) -> dict[str, float | None]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise TraceImportError(f"{path}: expected an object of metric name to number")
    for k, v in data.items():
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v)):
            raise TraceImportError(f"{path}: metric {k!r} is {v!r}, not a finite number or null")
    return data


def split_config(name: str) -> tuple[str, str, str]:
    """``gpt-4o-2024-08-06_swe-agent_expert`` -> (model, agent, split)."""
    parts = name.split("_")
    if len(parts) < 3:
        return name, name, ""
    return parts[0], "_".join(parts[1:-1]), parts[-1]


def task_run(task_dir: Path, config_name: str, *, now: float) -> tuple[dict[str, Any], list[Event]]:
    """The run (fields and events) of one SUPER task folder.

    Raises:
        TraceImportError: ``metrics.json`` is missing or malformed, or the notebook cannot be read.
    """
    metrics = _metrics(task_dir / "metrics.json")
    model, agent, split = split_config(config_name)
    task = task_dir.name
    run_id = f"super-{config_name}-{task}"
    history = task_dir / "history.ipynb"
    traj = parse_history(history) if history.exists() else Trajectory()
    config = {"source": SOURCE, "agent_config": config_name, "split": split, "task": task, "agent": agent,
              "model": model, "has_history": history.exists()}
    events: list[Event] = []

    def span_id() -> str:
        return hashlib.sha256(f"{run_id}:{len(events)}".encode()).hexdigest()[:16]

    def add(data: EventData, elapsed: float, agent_name: str | None = agent) -> None:
        events.append(Event(run_id, *data, len(events), now + elapsed, elapsed, span_id(), None, agent_name))

    add(schema.run_started(config=config, super_sections=traj.sections), 0.0)
    first = next((s.start for s in traj.steps if s.start is not None), None)
    elapsed = 0.0
    for s in traj.steps:
        if s.end is not None and first is not None:
            elapsed = float((s.end - first) % 86400)  # a day boundary wraps the clock
        pre = s.thought == PRE_EXECUTED
        add(schema.tool_call(step=s.number, tool_name=s.action_type or "execute", thought=s.thought, action=s.action,
                             observation=s.observation, pre_executed=pre, duration=s.duration),
            elapsed, "user" if pre else agent)
    for name, value in metrics.items():
        ev = score_event(run_id, Score(name, None if value is None else float(value), provenance="rule",
                                       source=SOURCE, item_id=task, details={"file": "metrics.json"}),
                         elapsed=elapsed, ts=now + elapsed, span_id=span_id())
        ev.seq, ev.agent = len(events), None
        events.append(ev)
    add(schema.run_finished("done"), elapsed)
    run = {"run_id": run_id, "task": task, "agent": agent, "model": model, "status": "done",
           "created_at": now, "finished_at": now + elapsed, "elapsed": elapsed if traj.steps else None,
           "batch_id": f"super:{config_name}", "config": config}
    return run, events


def find_tasks(path: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """``(configuration name, task folder)`` pairs under a trajectories root, a configuration or a task.

    Raises:
        TraceImportError: ``path`` is missing or holds no SUPER task folder.
    """
    path = Path(path)
    if not path.is_dir():
        raise TraceImportError(f"{path}: no such folder (expected SUPER trajectories)")
    if (path / "metrics.json").exists():
        return [(path.parent.name, path)]
    subdirs = sorted(p for p in path.iterdir() if p.is_dir())
    tasks = [(path.name, d) for d in subdirs if (d / "metrics.json").exists()]
    if not tasks:
        tasks = [(c.name, d) for c in subdirs for d in sorted(c.iterdir())
                 if d.is_dir() and (d / "metrics.json").exists()]
    if not tasks:
        raise TraceImportError(f"{path}: no SUPER task folders (<config>/<task>/metrics.json) found")
    return tasks


def import_super(store: TraceStore, path: str | os.PathLike[str]) -> list[str]:
    """Import SUPER trajectories, all or nothing.

    Args:
        store: Where the runs go.
        path: A trajectories root (one folder per agent configuration), one configuration's folder
            (one folder per task) or one task folder.

    Returns:
        The new run ids (``super-<configuration>-<task>``).

    Raises:
        TraceImportError: Nothing to import, or a file is malformed (named); nothing was written.
        StoreError: A run was imported before; nothing was written.
    """
    now = time.time()
    runs = [task_run(task_dir, config, now=now) for config, task_dir in find_tasks(path)]
    with store.transaction():
        return [store.restore_run(run, events) for run, events in runs]
