"""Scripted expert solutions of repo-setup problems: the commands an expert runs and the JSON they submit.

A suite keeps them in ``expert_solutions.yaml`` next to its problems (never copied into a sandbox)::

    problem-id:
      commands: [cd /work/repo && pip install -r requirements.txt, ...]
      submit: cd /work/repo && python -c '...print the JSON answer...'
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lab.tasks.errors import TaskError, TaskSpecError
from lab.tasks.model import Task
from lab.tasks.yaml_loader import read_yaml

if TYPE_CHECKING:
    from lab.models.scripted import ScriptedModel
    from lab.sandbox import Sandbox

__all__ = ["ExpertSolution", "expert_model", "expert_solution", "run_expert"]

_JSON_LINE = re.compile(r"^\s*(\{.*\}|\[.*\])\s*$", re.MULTILINE)


class ExpertSolution(BaseModel):
    """One problem's scripted expert solution.

    Attributes:
        commands: Shell commands, in order (each starts from the sandbox's working directory).
        submit: A command printing the JSON answer the expert submits.
    """

    model_config = ConfigDict(extra="forbid")
    commands: list[str] = Field(min_length=1)
    submit: str


def expert_solution(task: Task) -> ExpertSolution:
    """The scripted expert solution of a task, from ``expert_solutions.yaml`` beside the task's file.

    Raises:
        TaskSpecError: There is no such file or entry, or the entry is malformed.
    """
    path = Path(task.source or ".").parent / "expert_solutions.yaml"
    if not path.is_file():
        raise TaskSpecError(f"task '{task.key}': no expert solutions at {path}")
    data, _ = read_yaml(path, what="expert solutions file")
    if not isinstance(data, dict) or task.id not in data:
        raise TaskSpecError(f"{path}: no expert solution for task '{task.id}'")
    entry = data[task.id]
    try:
        return ExpertSolution.model_validate(entry)
    except ValidationError as e:
        raise TaskSpecError(f"{path}: expert solution of '{task.id}': {e.errors()[0]['msg']}") from None


def _json_from(output: str, key: str) -> Any:
    found = _JSON_LINE.findall(output)
    if not found:
        raise TaskError(f"task '{key}': the expert's submit command printed no JSON line: {output[-300:]!r}")
    return json.loads(found[-1])


def run_expert(task: Task, sandbox: Sandbox, *, timeout: float = 600) -> tuple[Any, list[str]]:
    """Run a task's expert solution directly in a prepared sandbox.

    Returns:
        The submitted answer and the transcript (each command's output, for landmark scoring).

    Raises:
        TaskError: The submit command failed or printed no JSON.
    """
    sol = expert_solution(task)
    transcript = []
    for cmd in [*sol.commands, sol.submit]:
        res = sandbox.exec(["sh", "-c", cmd], timeout=timeout)
        transcript.append(f"$ {cmd}\n{res.stdout}{res.stderr}")
    if not res.ok:
        raise TaskError(f"task '{task.key}': the expert's submit command failed: {res.stderr[-300:]}")
    return _json_from(res.stdout, task.key), transcript


def expert_model(task: Task) -> ScriptedModel:
    """A :class:`lab.models.ScriptedModel` that plays the expert in the repo-setup loop: one ``shell`` call
    per command, then the submit command, then ``submit`` with the JSON that command printed."""
    from lab.models.base import ToolCall
    from lab.models.scripted import ScriptedModel

    sol = expert_solution(task)

    def submit(messages: list) -> ToolCall:
        observed = next(m.content for m in reversed(messages) if m.role == "tool")
        return ToolCall("", "submit", {"answer": json.dumps(_json_from(observed or "", task.key))})

    calls = [ToolCall("", "shell", {"command": c}) for c in [*sol.commands, sol.submit]]
    return ScriptedModel([*calls, submit], name="expert-script")
