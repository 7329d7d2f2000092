"""Suites: the bundled ones (package data under ``lab/tasks/suites``) and the user's own task directories.

A suite is a directory with a ``suite.yaml``::

    name: chem-tools
    description: One line for ``lab tasks list``.
    format: yaml            # yaml | medqa-open | super | metr
    files: [tasks.yaml]     # task files (yaml, medqa-open, super) or family directories (metr)
    ci: [mw-aspirin, ...]   # a small subset for CI (optional)
    options: {...}          # loader options (super: sandbox/resources/budgets; medqa-open: judge ...)

User suites are found in the directories named by ``$LAB_TASK_DIRS`` (``os.pathsep``-separated): each is a
suite itself or holds suites as sub-directories.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lab.tasks.errors import TaskError, TaskPathError, TaskSpecError
from lab.tasks.jsonl import iter_jsonl
from lab.tasks.medqa import load_medqa_open
from lab.tasks.metr import load_metr_family
from lab.tasks.model import ALLOW_PATHS_ENV, Limits, Resources, ScorerRef, Task, TaskSandbox, allowed_roots
from lab.tasks.super_jsonl import load_super_jsonl
from lab.tasks.yaml_loader import load_task_file, read_yaml

__all__ = ["BUNDLED", "Suite", "get_task", "list_suites", "load_suite", "load_tasks"]

BUNDLED = Path(__file__).parent / "suites"


class _SuiteFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    description: str = ""
    format: Literal["yaml", "medqa-open", "super", "metr"]
    files: list[str] = Field(min_length=1)
    ci: list[str] = Field(default_factory=list)
    options: dict[str, Any] = Field(default_factory=dict)


@dataclass
class Suite:
    """A suite of tasks on disk.

    Attributes:
        name: Suite name (``medqa-open`` ...).
        description: One line.
        format: The loader used.
        path: The suite directory.
        files: Task files or family directories, relative to ``path``.
        ci: Task ids of the small subset CI runs.
        options: Loader options.
        bundled: Shipped with the lab (vs a user directory).
    """

    name: str
    description: str
    format: str
    path: Path
    files: list[str]
    ci: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    bundled: bool = False

    @property
    def readme(self) -> Path | None:
        """The suite's README, if it has one."""
        p = self.path / "README.md"
        return p if p.exists() else None

    def load(self, *, subset: Literal["all", "ci"] = "all",
             allow_paths: Sequence[str | os.PathLike[str]] = ()) -> list[Task]:
        """Load the suite's tasks.

        Args:
            subset: ``ci`` loads only the tasks listed under ``ci`` (all when the list is empty).
            allow_paths: Host directories its files may reach besides the suite's own directory.

        Raises:
            TaskSpecError: A task file is invalid or lies outside the suite's directory, or a ``ci`` id names
                no task.
        """
        tasks: list[Task] = []
        opts = self.options
        roots = [self.path.resolve(), *allowed_roots(allow_paths)]
        for i, rel in enumerate(self.files):
            p = self.path / rel
            if not any(p.resolve() == r or r in p.resolve().parents for r in roots):
                raise TaskPathError(f"{self.path / 'suite.yaml'}: field 'files.{i}': {rel!r} resolves to "
                                    f"{p.resolve()}, outside the suite's directory {roots[0]}; allow it with "
                                    f"--allow-path DIR or ${ALLOW_PATHS_ENV}")
            if self.format == "yaml":
                tasks += load_task_file(p, suite=self.name, allow_paths=allow_paths)
            elif self.format == "medqa-open":
                judge = ScorerRef.model_validate(opts["judge"]) if opts.get("judge") else None
                tasks += load_medqa_open(p, suite=self.name, judge=judge)
            elif self.format == "super":
                tasks += load_super_jsonl(
                    p, suite=self.name,
                    sandbox=TaskSandbox.model_validate(opts["sandbox"]) if "sandbox" in opts else None,
                    resources=Resources.model_validate(opts["resources"]) if "resources" in opts else None,
                    budgets=Limits.model_validate(opts["budgets"]) if "budgets" in opts else None,
                    super_compatible=bool(opts.get("super_compatible", False)))
            else:
                tasks += load_metr_family(p, suite=self.name, **({"image": opts["image"]} if "image" in opts else {}))
        seen: set[str] = set()
        for t in tasks:
            if t.id in seen:
                raise TaskSpecError(f"suite '{self.name}': two tasks share the id '{t.id}'")
            seen.add(t.id)
        if subset == "ci" and self.ci:
            by_id = {t.id: t for t in tasks}
            missing = [i for i in self.ci if i not in by_id]
            if missing:
                raise TaskSpecError(f"{self.path / 'suite.yaml'}: 'ci' names unknown task(s) {missing}")
            return [by_id[i] for i in self.ci]
        return tasks


def _read_suite(path: Path, *, bundled: bool) -> Suite:
    f = path / "suite.yaml"
    raw, _ = read_yaml(f, what="suite file")
    try:
        spec = _SuiteFile.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        raise TaskSpecError(f"{f}: field '{'.'.join(map(str, err['loc']))}': {err['msg']}") from None
    return Suite(spec.name, spec.description, spec.format, path, spec.files, spec.ci, spec.options, bundled)


def _user_dirs() -> list[Path]:
    return [Path(p).expanduser() for p in os.environ.get("LAB_TASK_DIRS", "").split(os.pathsep) if p]


def list_suites(extra_dirs: Sequence[str | Path] | None = None) -> list[Suite]:
    """The bundled suites, then those in ``$LAB_TASK_DIRS`` and ``extra_dirs``.

    Raises:
        TaskSpecError: A ``suite.yaml`` is invalid, or two suites share a name.
    """
    found: list[Suite] = []
    for d in sorted(BUNDLED.iterdir()):
        if (d / "suite.yaml").exists():
            found.append(_read_suite(d, bundled=True))
    for root in [*_user_dirs(), *map(Path, extra_dirs or [])]:
        if (root / "suite.yaml").exists():
            found.append(_read_suite(root, bundled=False))
        elif root.is_dir():
            found += [_read_suite(d, bundled=False) for d in sorted(root.iterdir()) if (d / "suite.yaml").exists()]
    names: dict[str, Path] = {}
    for s in found:
        if s.name in names:
            raise TaskSpecError(f"two suites are named '{s.name}': {names[s.name]} and {s.path}")
        names[s.name] = s.path
    return found


def _suite(name: str, extra_dirs: Sequence[str | Path] | None = None) -> Suite:
    suites = {s.name: s for s in list_suites(extra_dirs)}
    if name not in suites:
        raise TaskError(f"no suite named '{name}'; known: {', '.join(sorted(suites))}")
    return suites[name]


def load_suite(name: str, *, subset: Literal["all", "ci"] = "all", extra_dirs: Sequence[str | Path] | None = None,
               allow_paths: Sequence[str | os.PathLike[str]] = ()) -> list[Task]:
    """Load a suite's tasks by name (``allow_paths``: host directories its files may reach besides its own).

    Raises:
        TaskError: No such suite; TaskSpecError for an invalid task in it.
    """
    return _suite(name, extra_dirs).load(subset=subset, allow_paths=allow_paths)


def get_task(key: str, *, extra_dirs: Sequence[str | Path] | None = None) -> Task:
    """Find one task by ``suite/id`` (ids may themselves contain ``/``, as METR's ``family/task`` do).

    Raises:
        TaskError: No such suite or task.
    """
    suite, sep, tid = key.partition("/")
    if not sep:
        raise TaskError(f"task '{key}': give it as SUITE/ID")
    for t in _suite(suite, extra_dirs).load():
        if t.id == tid:
            return t
    raise TaskError(f"no task '{tid}' in suite '{suite}'")


def load_tasks(path: str | Path, *, allow_paths: Sequence[str | os.PathLike[str]] = ()) -> list[Task]:
    """Load tasks from any supported source, chosen by what ``path`` is.

    A directory with ``suite.yaml`` is a suite; a directory with ``<dir>.py`` a METR family; a ``.yaml`` /
    ``.yml`` file our YAML format; a ``.jsonl`` file SUPER problems or DERA MedQA-open questions (told apart
    by the fields of its first record). Task files reach host files only under their own directory and
    ``allow_paths`` (and ``$LAB_TASK_ALLOW_PATHS``).

    Raises:
        TaskSpecError: The path is none of these, or its content is invalid.
    """
    p = Path(path)
    if p.is_dir():
        if (p / "suite.yaml").exists():
            return _read_suite(p.resolve(), bundled=False).load(allow_paths=allow_paths)
        if (p / f"{p.resolve().name}.py").exists():
            return load_metr_family(p)
        raise TaskSpecError(f"{p}: a task directory needs suite.yaml or {p.resolve().name}.py (METR family)")
    if p.suffix in (".yaml", ".yml"):
        return load_task_file(p, allow_paths=allow_paths)
    if p.suffix == ".jsonl":
        first = next(iter_jsonl(p), None)
        if first is None:
            raise TaskSpecError(f"{p}: empty file")
        if "question_open" in first[1]:
            return load_medqa_open(p, suite=None)
        if "task_id" in first[1] and "query" in first[1]:
            return load_super_jsonl(p)
        raise TaskSpecError(f"{p}:{first[0]}: neither a SUPER problem (task_id, query ...) nor a "
                            f"MedQA-open question (question_open ...)")
    if not p.exists():
        raise TaskSpecError(f"{p}: no such file or directory")
    raise TaskSpecError(f"{p}: unknown task format (expected a directory, .yaml, .yml or .jsonl)")
