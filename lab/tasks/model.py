"""The task model: what a task asks, where it runs, what it may use, and how it is scored.

Every loader (own YAML, METR Task Standard, SUPER JSONL, DERA MedQA-open JSONL) produces :class:`Task`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PrivateAttr, model_validator

from lab.limits import Limits
from lab.tasks.errors import TaskPathError

ALLOW_PATHS_ENV = "LAB_TASK_ALLOW_PATHS"
"""Host directories (separated by ``os.pathsep``) that every task file may reach besides its own directory."""


def allowed_roots(extra: Sequence[str | os.PathLike[str]] = ()) -> list[Path]:
    """Directories task files may reach besides their own: ``extra`` (e.g. ``--allow-path``) and
    ``$LAB_TASK_ALLOW_PATHS``, resolved."""
    env = [p for p in os.environ.get(ALLOW_PATHS_ENV, "").split(os.pathsep) if p]
    return [Path(p).expanduser().resolve() for p in (*extra, *env)]


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CopySpec(_Strict):
    """A file or directory copied into the sandbox before the task starts.

    Attributes:
        src: Path on the host, relative to the file the task was defined in.
        dest: Absolute path inside the sandbox.
    """

    src: str
    dest: str


class TaskSandbox(_Strict):
    """The environment a task runs in (turned into a :class:`lab.sandbox.SandboxSpec` when it opens).

    Attributes:
        image: Name of an image defined under ``sandboxes/`` (``base``, ``repo-setup`` ...).
        workdir: Where the solver starts.
        copy_in: What is copied in before setup.
        setup: Shell commands run in order before the solver starts (a failure aborts the task).
        user: The solver's user; ``None`` keeps the image's non-root default.
        read_only_root: Mount the root filesystem read-only (the workdir and ``/tmp`` stay writable); tasks
            that install packages system-wide turn it off.
    """

    image: str = "base"
    workdir: str | None = None
    copy_in: list[CopySpec] = Field(default_factory=list)
    setup: list[str] = Field(default_factory=list)
    user: str | None = None
    read_only_root: bool = True


class Resources(_Strict):
    """What the sandbox may use.

    Attributes:
        cpus: CPU cores.
        memory_gb: Memory limit in GiB.
        gpus: GPUs (0: none); a task needing more than the machine has is skipped with a reason.
        network: Whether the sandbox may reach the network (off by default).
        storage_gb: Disk the task expects, if it says.
    """

    cpus: PositiveFloat = 1.0
    memory_gb: PositiveFloat = 2.0
    gpus: int = Field(default=0, ge=0)
    network: bool = False
    storage_gb: PositiveFloat | None = None


class ScriptScoring(_Strict):
    """A scoring command run inside the sandbox.

    The submission is written to the command's standard input; the command prints its score as the last
    line of standard output: a number, or a JSON object with a numeric ``score``.

    Attributes:
        command: Shell command (run with ``sh -c``).
        timeout_s: The command is killed after this many seconds and the scoring fails.
    """

    command: str
    timeout_s: PositiveFloat = 300.0


class ScorerRef(_Strict):
    """A scorer from ``lab.scoring``'s registry and the arguments it is built with."""

    scorer: str
    args: dict[str, Any] = Field(default_factory=dict)


class Scoring(_Strict):
    """How a task is scored.

    Exactly one of ``scorer`` (a name in ``lab.scoring``'s registry, called with ``args``) or ``script``
    (run in the sandbox) is set.

    Attributes:
        scorer: Registered scorer name.
        args: Keyword arguments for the scorer.
        target: What the scorer compares against (default: the task's ``answer``), e.g. a list of aliases.
        fallback: A second scorer consulted when the first does not give full marks (e.g. an LLM judge
            after an alias match); it sees the task's ``answer``.
        script: A scoring command run inside the sandbox.
        intermediate: Whether the solver may ask for a score before submitting.
        visible_to_agent: Whether intermediate scores are shown to the solver.
        starting_score: Raw score of the starting solution (normalisation's 0).
        reference_score: Raw score of the reference solution (normalisation's 1).
    """

    scorer: str | None = None
    args: dict[str, Any] = Field(default_factory=dict)
    target: Any = None
    fallback: ScorerRef | None = None
    script: ScriptScoring | None = None
    intermediate: bool = False
    visible_to_agent: bool = True
    starting_score: float | None = None
    reference_score: float | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Scoring:
        if (self.scorer is None) == (self.script is None):
            raise ValueError("set exactly one of 'scorer' or 'script'")
        if (self.starting_score is None) != (self.reference_score is None):
            raise ValueError("'starting_score' and 'reference_score' go together")
        if self.starting_score is not None and self.starting_score == self.reference_score:
            raise ValueError("'starting_score' equals 'reference_score': nothing to normalise against")
        return self

    def normalise(self, raw: float) -> float:
        """``(raw - start) / (ref - start)``: 0 at the starting solution, 1 at the reference.

        Works whether lower or higher raw scores are better.

        Raises:
            ValueError: The task has no starting and reference scores.
        """
        if self.starting_score is None or self.reference_score is None:
            raise ValueError("task has no starting/reference scores")
        return (raw - self.starting_score) / (self.reference_score - self.starting_score)


class MetrRef(_Strict):
    """Where a METR Task Standard task comes from.

    Attributes:
        family_dir: Directory holding ``<family>.py``.
        family: The family name (the module name).
        task: The task's name within the family.
        standard_version: ``TaskFamily.standard_version``.
    """

    family_dir: str
    family: str
    task: str
    standard_version: str | None = None


TaskKind = Literal["qa", "tools", "repo", "rd"]


class Task(_Strict):
    """One task a human expert or an agent attempts.

    Attributes:
        id: Unique within its suite.
        suite: The suite it belongs to (``None`` for a loose task file).
        kind: What sort of work: ``qa`` (answer a question), ``tools`` (answer using tools),
            ``repo`` (set up and run a repository in a sandbox), ``rd`` (improve a solution against a score).
        instructions: What the solver is told.
        inputs: Structured inputs (a question's options, a molecule ...).
        tools: Names of tools the solver gets (e.g. chemistry tools); tasks with intermediate scoring
            get the ``score`` tool.
        sandbox: The environment; ``None`` when the task needs none.
        resources: Limits for the sandbox.
        budgets: Limits on the attempt.
        scoring: How it is scored.
        answer: The gold answer, where there is one.
        landmarks: Regular expressions over the solver's outputs marking progress (SUPER).
        entrypoint: The script that must run for the task to count as executed (SUPER).
        metr: Set for METR Task Standard tasks.
        metadata: Anything else (source dataset fields, difficulty ...).
        source: The file the task was loaded from.
    """

    id: str = Field(min_length=1)
    suite: str | None = None
    kind: TaskKind = "qa"
    instructions: str = Field(min_length=1)
    inputs: dict[str, Any] = Field(default_factory=dict)
    tools: list[str] = Field(default_factory=list)
    sandbox: TaskSandbox | None = None
    resources: Resources = Field(default_factory=Resources)
    budgets: Limits = Field(default_factory=Limits)
    scoring: Scoring
    answer: Any = None
    landmarks: list[str] = Field(default_factory=list)
    entrypoint: str | None = None
    metr: MetrRef | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None

    @model_validator(mode="after")
    def _score_tool(self) -> Task:
        if self.scoring.intermediate and "score" not in self.tools:
            self.tools = [*self.tools, "score"]  # agents ask for intermediate scores as humans do
        return self

    @property
    def key(self) -> str:
        """``suite/id`` (or just ``id`` for a loose task): the name the CLI and runner use."""
        return f"{self.suite}/{self.id}" if self.suite else self.id

    _allow: tuple[str, ...] = PrivateAttr(default=())

    def allow_paths(self, dirs: Sequence[str | os.PathLike[str]]) -> Task:
        """Let this task reach host files under ``dirs`` too (what ``--allow-path`` does); returns the task."""
        self._allow = (*self._allow, *map(str, dirs))
        return self

    def host_path(self, rel: str) -> Path:
        """Resolve a host path given relative to the file this task was defined in (links followed).

        A task loaded from a file reaches only files under that file's directory, or under directories
        allowed with :meth:`allow_paths` or ``$LAB_TASK_ALLOW_PATHS``. A task built in Python (no ``source``)
        resolves against the current directory, unconfined.

        Raises:
            TaskPathError: The path leads outside every allowed directory (the message names the file).
        """
        if not self.source:
            return (Path.cwd() / rel).resolve()
        base = Path(self.source).parent.resolve()
        path = (base / rel).resolve()
        roots = [base, *allowed_roots(self._allow)]
        if not any(_inside(path, r) for r in roots):
            raise TaskPathError(
                f"{rel!r} resolves to {path}, outside the task file's directory {base}; a task file reaches only "
                f"files under its own directory unless allowed (--allow-path DIR or ${ALLOW_PATHS_ENV})")
        return path
