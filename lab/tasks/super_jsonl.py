"""SUPER problem files (``task_id, query, answer, landmarks, entrypoint, pre_execute_cells`` per JSONL line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lab.tasks.errors import TaskSpecError
from lab.tasks.jsonl import iter_jsonl
from lab.tasks.model import Limits, Resources, Scoring, Task, TaskSandbox

__all__ = ["load_super_jsonl", "SUPER_SUFFIX"]

_FIELDS = ("task_id", "query", "answer", "landmarks", "entrypoint", "pre_execute_cells")
SUPER_SUFFIX = (
    "\n\nWhen you are done, submit the answer as a JSON object with exactly the keys asked for above "
    "(numbers as numbers, not strings)."
)


def _parse_answer(raw: Any, where: str) -> Any:
    if isinstance(raw, str):  # SUPER stores answers as JSON text
        try:
            return json.loads(raw)
        except json.JSONDecodeError as e:
            raise TaskSpecError(f"{where}: 'answer' is not valid JSON: {e.msg}") from None
    return raw


def load_super_jsonl(path: str | Path, *, suite: str | None = None, sandbox: TaskSandbox | None = None,
                     resources: Resources | None = None, budgets: Limits | None = None,
                     super_compatible: bool = False) -> list[Task]:
    """Load SUPER problems as ``repo`` tasks scored by SUPER's metrics.

    The scorer is ``json_match`` (SUPER's output match, 1e-2 absolute tolerance) against the gold answer;
    landmarks (regular expressions over the solver's outputs)
    and the entrypoint are on the task. ``pre_execute_cells`` become sandbox setup steps. Any other SUPER
    fields (``github_repo``, ``git_commit``, ``query_components``, ``solution`` ...) go to ``metadata``.

    Args:
        path: The JSONL file.
        suite: Suite name.
        sandbox: Environment for every problem (default: the ``base`` image).
        resources: Resources for every problem.
        budgets: Limits for every problem.
        super_compatible: Score dict answers exactly as SUPER's code does (gold and prediction swapped);
            the default keys on the gold answer, so a submission that leaves out asked-for keys loses them.

    Raises:
        TaskSpecError: A line is malformed, lacks a SUPER field, or has an answer that is not JSON.
    """
    path = Path(path)
    tasks: list[Task] = []
    seen: set[str] = set()
    for n, rec in iter_jsonl(path, _FIELDS):
        where = f"{path}:{n}"
        tid = str(rec["task_id"])
        if tid in seen:
            raise TaskSpecError(f"{where}: duplicate task_id '{tid}'")
        seen.add(tid)
        landmarks, cells = rec["landmarks"] or [], rec["pre_execute_cells"] or []
        if not isinstance(landmarks, list) or not all(isinstance(x, str) for x in landmarks):
            raise TaskSpecError(f"{where}: task '{tid}': 'landmarks' must be a list of strings")
        if not isinstance(cells, list) or not all(isinstance(x, str) for x in cells):
            raise TaskSpecError(f"{where}: task '{tid}': 'pre_execute_cells' must be a list of strings")
        box = (sandbox or TaskSandbox()).model_copy(deep=True)
        box.setup = [*box.setup, *cells]
        extra = {k: v for k, v in rec.items() if k not in _FIELDS}
        tasks.append(Task(
            id=tid, suite=suite, kind="repo",
            instructions=str(rec["query"]).rstrip() + SUPER_SUFFIX,
            sandbox=box,
            resources=resources or Resources(),
            budgets=budgets or Limits(),
            scoring=Scoring(scorer="json_match", args={"float_tol": 1e-2, "super_compat": super_compatible}),
            answer=_parse_answer(rec["answer"], f"{where}: task '{tid}'"),
            landmarks=landmarks,
            entrypoint=rec["entrypoint"] or None,
            metadata={**extra, "line": n},
            source=str(path),
        ))
    return tasks
