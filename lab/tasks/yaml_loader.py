"""Tasks written in YAML: one task per file, or a ``tasks:`` list with shared ``defaults``.

A bad file raises :class:`TaskSpecError` naming the file, the line, the task and the field::

    tasks.yaml:12: task 'mw-aspirin': field 'scoring.scorer': Input should be a valid string

Files are read defensively (:func:`read_yaml`): a size limit, UTF-8 only, bounded nesting and bounded alias
expansion ("billion laughs"), each refused with the file and line. Host paths a task names (``copy_in``
sources) must lie under the task file's own directory unless allowed (``allow_paths``, ``--allow-path``,
``$LAB_TASK_ALLOW_PATHS``); ``source`` and ``metr`` are set by loaders and refused in a file.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from lab.tasks.errors import TaskPathError, TaskSpecError
from lab.tasks.model import Task

__all__ = ["load_task_file", "read_yaml", "tasks_from_mapping"]

MAX_BYTES = 8 << 20
"""Largest YAML file read (``$LAB_YAML_MAX_BYTES`` overrides)."""
MAX_DEPTH = 64
"""Deepest nesting of mappings and lists."""
MAX_NODES = 200_000
"""Most values a document may hold once its aliases are expanded."""
_LOADER_FIELDS = {"source": "set by the loader to the task file's path", "metr": "set by the METR family loader "
                  "(load the family directory instead)"}


def _check_events(text: str, where: str) -> None:
    """Refuse deep nesting and alias expansion bombs in one non-recursive pass over the parser's events."""
    sizes: dict[str, int] = {}
    stack: list[list] = [[None, 0]]  # [anchor, expanded size] per open collection
    for ev in yaml.parse(text, Loader=yaml.SafeLoader):
        line = ev.start_mark.line + 1 if ev.start_mark is not None else "?"
        if isinstance(ev, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            stack.append([ev.anchor, 1])
            if len(stack) - 1 > MAX_DEPTH:
                raise TaskSpecError(f"{where}:{line}: nested more than {MAX_DEPTH} levels deep")
            continue
        if isinstance(ev, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, size = stack.pop()
            if anchor is not None:
                sizes[anchor] = size
        elif isinstance(ev, yaml.ScalarEvent):
            size = 1
            if ev.anchor is not None:
                sizes[ev.anchor] = 1
        elif isinstance(ev, yaml.AliasEvent):
            if ev.anchor not in sizes:
                raise TaskSpecError(f"{where}:{line}: alias *{ev.anchor} refers to a node that contains it "
                                    "(or to no anchor)")
            size = sizes[ev.anchor]
        else:
            continue
        stack[-1][1] += size
        if stack[-1][1] > MAX_NODES:
            raise TaskSpecError(f"{where}:{line}: more than {MAX_NODES:,} values once aliases are expanded "
                                "(an alias bomb?)")


def read_yaml(path: str | Path, *, what: str = "task file") -> tuple[object, yaml.Node | None]:
    """Read one YAML document safely: ``(data, composed node)`` for line numbers.

    Raises:
        TaskSpecError: The file cannot be read, is too large, is not UTF-8 text, is not valid YAML, nests too
            deeply or expands aliases too far (the message names the file, and the line where there is one).
    """
    path = Path(path)
    limit = int(os.environ.get("LAB_YAML_MAX_BYTES") or MAX_BYTES)
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as e:
        raise TaskSpecError(f"{path}: cannot read {what}: {e.strerror or e}") from None
    if len(raw) > limit:
        raise TaskSpecError(f"{path}: {what} is over the {limit / (1 << 20):.0f} MiB limit for YAML files")
    nul = raw.find(b"\0", 0, 8192)
    if nul >= 0:
        line = raw[:nul].count(b"\n") + 1
        raise TaskSpecError(f"{path}:{line}: a binary file (NUL byte at offset {nul}), not YAML text")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise TaskSpecError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})") from None
    try:
        _check_events(text, str(path))
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        at = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise TaskSpecError(f"{path}{at}: invalid YAML: {problem}") from None
    except RecursionError:
        raise TaskSpecError(f"{path}: nested too deeply to read") from None
    return data, node


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
        at = f":{node.start_mark.line + 1}" if node is not None else ""
        raise TaskSpecError(f"{where}{at}: a task must be a mapping, got {type(raw).__name__}")
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


def _check_paths(task: Task, where: str, tnode: yaml.Node | None, dnode: yaml.Node | None) -> None:
    for i, c in enumerate(task.sandbox.copy_in if task.sandbox else []):
        try:
            task.host_path(c.src)
        except TaskPathError as e:
            loc = ("sandbox", "copy_in", i, "src")
            raise TaskPathError(f"{where}:{_line_of(loc, tnode, dnode)}: task '{task.id}': field "
                                f"'{'.'.join(map(str, loc))}': {e}") from None


def tasks_from_mapping(data: Any, where: str, *, suite: str | None = None, node: yaml.Node | None = None,
                       allow_paths: Sequence[str | os.PathLike[str]] = ()) -> list[Task]:
    """Build tasks from already-parsed YAML data (one task, or ``{suite?, defaults?, tasks: [...]}``).

    Args:
        data: The parsed document.
        where: The file the data came from (host paths in it resolve against its directory).
        suite: Suite name given to every task that does not set one.
        node: The composed YAML node of ``data``, for line numbers in errors.
        allow_paths: Host directories the tasks may reach besides the file's own directory.

    Returns:
        The tasks, in file order.

    Raises:
        TaskSpecError: A task is invalid, names a host path outside the allowed directories, sets a field
            only loaders set, or two tasks share an id.
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
        tchild, dchild = _child(node, "tasks"), _child(node, "defaults")
        tnode = tchild[0] if tchild is not None else None
        dnode = dchild[0] if dchild is not None else None
        pairs: list[tuple[Any, yaml.Node | None]] = [(it, (_child(tnode, i) or (None,))[0])
                                                      for i, it in enumerate(items)]
    else:
        pairs, defaults, dnode = [(data, node)], {}, None
    tasks: list[Task] = []
    seen: dict[str, int | None] = {}
    for raw, tnode in pairs:
        if isinstance(raw, dict):
            raw = _merge(defaults, raw)
            for key, why in _LOADER_FIELDS.items():
                if key in raw:
                    line = _line_of((key,), tnode, dnode)
                    raise TaskSpecError(f"{where}:{line}: task '{raw.get('id', '?')}': field '{key}': {why}; "
                                        "remove it from the file")
            raw["source"] = where
            if suite is not None:
                raw.setdefault("suite", suite)
        task = _validate(raw, where, node=tnode, defaults_node=dnode).allow_paths(allow_paths)
        _check_paths(task, where, tnode, dnode)
        line = tnode.start_mark.line + 1 if tnode is not None else None
        if task.id in seen:
            raise TaskSpecError(f"{where}:{line}: duplicate task id '{task.id}' (first at line {seen[task.id]})")
        seen[task.id] = line
        tasks.append(task)
    return tasks


def load_task_file(path: str | Path, *, suite: str | None = None,
                   allow_paths: Sequence[str | os.PathLike[str]] = ()) -> list[Task]:
    """Load the tasks in a YAML file.

    Args:
        path: The file.
        suite: Suite name for tasks that do not set one.
        allow_paths: Host directories the tasks may copy files from besides the file's own directory.

    Returns:
        The tasks, each with ``source`` set to the file so relative paths resolve against it.

    Raises:
        TaskSpecError: The file is missing, unreadable or not valid YAML (see :func:`read_yaml`), or a task in it
            is invalid (the message names the file, line, task and field).
    """
    data, node = read_yaml(path)
    if data is None:
        raise TaskSpecError(f"{path}: empty task file")
    return tasks_from_mapping(data, str(path), suite=suite, node=node, allow_paths=allow_paths)
