"""Tasks written in YAML: one task per file, or a ``tasks:`` list with shared ``defaults``.

A bad file raises :class:`TaskSpecError` naming the file, the line, the task and the field::

    tasks.yaml:12: task 'mw-aspirin': field 'scoring.scorer': Input should be a valid string
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lab.tasks.errors import TaskSpecError
from lab.tasks.model import Task

__all__ = ["load_task_file", "tasks_from_mapping"]


def _child(node: yaml.Node | None, key: Any) -> tuple[yaml.Node, int] | None:
    """The child at ``key`` and the line (0-based) where it is named: the key's line in a mapping."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == str(key):
                return v, k.start_mark.line
    elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key], node.value[key].start_mark.line
    return None


def _line_of(loc: tuple, *nodes: yaml.Node | None) -> int | None:
    """1-based line of the deepest node along ``loc`` in the first node that has any of it."""
    for root in nodes:
        node, found = root, None
        for part in loc:
            nxt = _child(node, part)
            if nxt is None:
                if isinstance(part, str) and not isinstance(node, yaml.MappingNode):
                    continue  # a pydantic union tag (e.g. 'float'), not a YAML key
                break
            node, found = nxt
        if found is not None:
            return found + 1
    for root in nodes:
        if root is not None:
            return root.start_mark.line + 1
    return None


def _merge(defaults: dict, task: dict) -> dict:
    out = copy.deepcopy(defaults)
    for k, v in task.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _validate(raw: Any, where: str, *, node: yaml.Node | None = None,
              defaults_node: yaml.Node | None = None) -> Task:
    if not isinstance(raw, dict):
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        raise TaskSpecError(f"{where}{line}: a task must be a mapping, got {type(raw).__name__}")
    try:
        return Task.model_validate(raw)
    except ValidationError as e:
        name = raw.get("id", "?")
        parts = []
        for err in e.errors():
            loc = tuple(err["loc"])
            line = _line_of(loc, node, defaults_node)
            field = ".".join(str(p) for p in loc) or "(task)"
            prefix = f"{where}:{line}" if line else where
            parts.append(f"{prefix}: task '{name}': field '{field}': {err['msg']}")
        raise TaskSpecError("; ".join(parts)) from None


def tasks_from_mapping(data: Any, where: str, *, suite: str | None = None,
                       node: yaml.Node | None = None) -> list[Task]:
    """Build tasks from already-parsed YAML data (one task, or ``{suite?, defaults?, tasks: [...]}``).

    Args:
        data: The parsed document.
        where: A name for error messages (usually the file path).
        suite: Suite name given to every task that does not set one.
        node: The composed YAML node of ``data``, for line numbers in errors.

    Returns:
        The tasks, in file order.

    Raises:
        TaskSpecError: A task is invalid, or two tasks share an id.
    """
    if isinstance(data, dict) and "tasks" in data:
        extra = set(data) - {"tasks", "defaults", "suite"}
        if extra:
            raise TaskSpecError(f"{where}:{_line_of((sorted(extra)[0],), node)}: unknown top-level key(s) "
                                f"{sorted(extra)} (expected tasks, defaults, suite)")
        items, defaults = data["tasks"], data.get("defaults") or {}
        suite = data.get("suite", suite)
        if not isinstance(items, list):
            raise TaskSpecError(f"{where}:{_line_of(('tasks',), node)}: 'tasks' must be a list")
        if not isinstance(defaults, dict):
            raise TaskSpecError(f"{where}:{_line_of(('defaults',), node)}: 'defaults' must be a mapping")
        tnode, dnode = (_child(node, k) for k in ("tasks", "defaults"))
        tnode, dnode = tnode and tnode[0], dnode and dnode[0]
        pairs = [(it, (_child(tnode, i) or (None,))[0]) for i, it in enumerate(items)]
    else:
        pairs, defaults, dnode = [(data, node)], {}, None
    tasks: list[Task] = []
    seen: dict[str, int | None] = {}
    for raw, tnode in pairs:
        if isinstance(raw, dict):
            raw = _merge(defaults, raw)
            raw.setdefault("source", where)
            if suite is not None:
                raw.setdefault("suite", suite)
        task = _validate(raw, where, node=tnode, defaults_node=dnode)
        line = tnode.start_mark.line + 1 if tnode is not None else None
        if task.id in seen:
            raise TaskSpecError(f"{where}:{line}: duplicate task id '{task.id}' (first at line {seen[task.id]})")
        seen[task.id] = line
        tasks.append(task)
    return tasks


def load_task_file(path: str | Path, *, suite: str | None = None) -> list[Task]:
    """Load the tasks in a YAML file.

    Args:
        path: The file.
        suite: Suite name for tasks that do not set one.

    Returns:
        The tasks, each with ``source`` set to the file so relative paths resolve against it.

    Raises:
        TaskSpecError: The file is missing, is not valid YAML, or a task in it is invalid (the message names
            the file, line, task and field).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise TaskSpecError(f"{path}: cannot read task file: {e.strerror or e}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        raise TaskSpecError(f"{path}{line}: invalid YAML: {problem}") from None
    if data is None:
        raise TaskSpecError(f"{path}: empty task file")
    return tasks_from_mapping(data, str(path), suite=suite, node=node)
