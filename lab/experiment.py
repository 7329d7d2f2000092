"""An experiment: tasks × loops × models × seeds, with budgets, sampling and scorers (YAML or Python).

```yaml
name: demo
tasks:
  - suite: medqa-open        # or: path: my_tasks.yaml   (relative to this file)
    ids: [dev-0001, dev-0002]   # optional; or subset: ci, limit: 3
  - data: questions.csv      # CSV/JSONL/Parquet or a saved datasets folder, one task per row
    fields: {prompt: question, answer: gold, id: qid}
    tools: [mytools:molar_mass]   # registered names, or module:function (module beside this file)
loops:
  - loop: dera
    options: {kind: qa}
models: [smollm2]
seeds: [0]
budgets: {steps: 2}          # overrides the tasks' own budgets
sampling: {max_tokens: 64, temperature: 0}
scorers: [{scorer: normalized_match}]   # added to each task's own scoring
concurrency: 2
```

Shorthands: a task entry may be a string (a suite name, ``suite/id``, or a path) and a loop entry a
loop name. Each combination has a stable key; a rerun skips combinations already ``done`` in the store.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from lab.errors import LabError
from lab.limits import Limits
from lab.tasks.dataset_tasks import FieldMap
from lab.tasks.errors import TaskSpecError
from lab.tasks.model import ScorerRef, Scoring, Task, TaskKind
from lab.tasks.yaml_loader import read_yaml


class ExperimentError(LabError):
    """An experiment file or object is invalid (the message names the file and the field)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TaskSelector(_Strict):
    """Which tasks to run: a bundled or user suite, a task file/directory, or a data file, optionally narrowed.

    Attributes:
        suite: Suite name (``medqa-open`` ...).
        path: A task file or directory (relative to the experiment file).
        data: A CSV/JSONL/Parquet file or a ``datasets`` folder saved with ``save_to_disk`` (relative to the
            experiment file, confined to its directory unless allowed), one task per row
            (:mod:`lab.tasks.dataset_tasks`).
        fields: For ``data``: which columns are the prompt, answer, id and metadata.
        split: For ``data``: the split of a saved ``DatasetDict``.
        tools: For ``data``: the tools each task gets (names, or ``module:function`` import paths).
        kind: For ``data``: the tasks' kind (default ``tools`` with tools, else ``qa``).
        scoring: For ``data``: how each task is scored (default ``normalized_match`` against the answer).
        ids: Only these task ids.
        subset: ``ci`` for the suite's small CI subset.
        limit: At most this many tasks (the first ones).
    """

    suite: str | None = None
    path: str | None = None
    data: str | None = None
    fields: FieldMap | None = None
    split: str | None = None
    tools: list[str] = Field(default_factory=list)
    kind: TaskKind | None = None
    scoring: Scoring | None = None
    ids: list[str] | None = None
    subset: Literal["all", "ci"] = "all"
    limit: int | None = Field(None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        if isinstance(v, str):
            if v.endswith((".yaml", ".yml", ".jsonl")) or v.startswith((".", "/", "~")):
                return {"path": v}
            suite, sep, tid = v.partition("/")
            return {"suite": suite, "ids": [tid]} if sep else {"suite": v}
        return v

    @model_validator(mode="after")
    def _one_source(self) -> TaskSelector:
        if sum(x is not None for x in (self.suite, self.path, self.data)) != 1:
            raise ValueError("give exactly one of 'suite', 'path' or 'data'")
        if (self.data is None) != (self.fields is None):
            raise ValueError("'data' needs 'fields' (prompt: COLUMN, answer: COLUMN ...), and 'fields' needs 'data'")
        if self.data is None and (self.tools or self.split or self.kind or self.scoring):
            raise ValueError("'tools', 'split', 'kind' and 'scoring' go with 'data' (task files set their own)")
        return self

    def load(self, base_dir: Path) -> list[Task]:
        """The selected tasks.

        Raises:
            ExperimentError: An id names no task.
        """
        from lab.tasks import load_suite, load_tasks
        from lab.tasks.dataset_tasks import load_dataset_tasks, resolve_data_path

        if self.data is not None:
            assert self.fields is not None
            tasks = load_dataset_tasks(resolve_data_path(self.data, base_dir), self.fields, split=self.split,
                                       tools=self.tools, kind=self.kind, scoring=self.scoring)
        elif self.suite is not None:
            tasks = load_suite(self.suite, subset=self.subset)
        else:
            assert self.path is not None  # the validator requires exactly one source
            p = Path(self.path).expanduser()
            tasks = load_tasks(p if p.is_absolute() else base_dir / p)
        if self.ids is not None:
            by_id = {t.id: t for t in tasks}
            missing = [i for i in self.ids if i not in by_id]
            if missing:
                raise ExperimentError(f"tasks {missing} not found in {self.suite or self.path or self.data}")
            tasks = [by_id[i] for i in self.ids]
        return tasks[: self.limit] if self.limit else tasks


class LoopSpec(_Strict):
    """One loop and its options.

    Attributes:
        loop: A registered loop (:data:`lab.agents.run.LOOPS`): ``dera``, ``react``, ``repo_setup`` ...
        label: Name of this configuration in results (default: the loop name).
        options: Loop options: DERA ``kind``, ``researcher_model``; ReAct ``tools`` (names, added to the
            task's; ``kernel`` is a persistent IPython kernel), ``approval``; repo-setup ``workbench``
            (``shell`` or ``kernel``); any loop ``system_prompt``, ``snapshot_steps``, ``tool_timeout``.
    """

    loop: str
    label: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        return {"loop": v} if isinstance(v, str) else v

    @field_validator("loop")
    @classmethod
    def _registered(cls, v: str) -> str:
        from lab.agents.run import LOOPS

        if v not in LOOPS:
            raise ValueError(f"unknown loop {v!r}; known: {', '.join(LOOPS.names())}")
        return v

    @property
    def name(self) -> str:
        """The loop's name in results: its label, else the loop."""
        return self.label or self.loop


class SamplingSpec(_Strict):
    """Sampling for every model call of the experiment (``None``: the backend's default)."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = Field(default=None, gt=0)


@dataclass(frozen=True)
class Combo:
    """One (task, loop, model, seed) combination of an experiment."""

    task: Task
    loop: LoopSpec
    model: str
    seed: int

    def key(self, experiment: Experiment) -> str:
        """A stable id of what this combination runs (changes when anything affecting the run does)."""
        payload = {"experiment": experiment.name, "task": self.task.key, "loop": self.loop.model_dump(),
                   "model": self.model, "seed": self.seed, "budgets": experiment.budgets.key(),
                   "sampling": experiment.sampling.model_dump()}
        return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Experiment(_Strict):
    """Tasks × loops × models × seeds, with budgets, sampling and scorers.

    Attributes:
        name: The experiment's name (its runs form the batch ``exp:<name>``).
        tasks: Task selections.
        loops: Loops to run.
        models: Model names (:func:`lab.models.load_model` forms).
        seeds: Seeds; each combination runs once per seed.
        budgets: Limits overriding the tasks' own budgets.
        sampling: Sampling parameters.
        scorers: Extra scorers applied to every submission, besides each task's own scoring.
        task_scoring: Score with each task's own scoring.
        judge_fallback: Let the task's fallback scorer (an LLM judge) grade answers its rule did not accept.
        concurrency: Combinations run at once.
        sandbox_backend: ``docker``, ``local`` (or another registered backend) for tasks with a sandbox.
        python_path: Directories (relative to the experiment file) where ``module:function`` tools are
            imported from; the experiment's own directory always is.
    """

    name: str = Field(min_length=1)
    tasks: list[TaskSelector] = Field(min_length=1)
    loops: list[LoopSpec] = Field(min_length=1)
    models: list[str] = Field(min_length=1)
    seeds: list[NonNegativeInt] = Field(default_factory=lambda: [0], min_length=1)
    budgets: Limits = Field(default_factory=Limits)
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    scorers: list[ScorerRef] = Field(default_factory=list)
    task_scoring: bool = True
    judge_fallback: bool = True
    concurrency: int = Field(1, gt=0)
    sandbox_backend: str = "docker"
    python_path: list[str] = Field(default_factory=list)
    _base_dir: Path = PrivateAttr(default_factory=Path.cwd)
    _source: str = PrivateAttr(default="experiment")

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError(f"seeds repeat: {v}")
        return v

    @field_validator("sandbox_backend")
    @classmethod
    def _backend(cls, v: str) -> str:
        from lab.sandbox.factory import SANDBOX_BACKENDS

        if v not in SANDBOX_BACKENDS:
            raise ValueError(f"unknown sandbox backend {v!r}; known: {', '.join(SANDBOX_BACKENDS.names())}")
        return v

    @property
    def batch_id(self) -> str:
        """The batch id the experiment's runs are recorded under."""
        return f"exp:{self.name}"

    @property
    def source(self) -> str:
        """Where the experiment came from (its file), for messages."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """The directory task paths are relative to (the experiment file's)."""
        return self._base_dir

    @classmethod
    def from_yaml(cls, path: str | Path) -> Experiment:
        """Read an experiment file.

        Raises:
            ExperimentError: The file is missing, not YAML, or a field is invalid (named with its path).
        """
        p = Path(path)
        if not p.exists():
            raise ExperimentError(f"no experiment file {p}")
        try:
            raw, _ = read_yaml(p, what="experiment file")
        except TaskSpecError as e:
            raise ExperimentError(str(e)) from None
        if raw is None:
            raise ExperimentError(f"{p}: empty experiment file (give name, tasks, loops, models ...)")
        exp = cls.from_dict(raw, source=str(p))
        exp._base_dir = p.resolve().parent
        return exp

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "experiment") -> Experiment:
        """Validate an experiment given as a dict.

        Raises:
            ExperimentError: A field is invalid.
        """
        if not isinstance(data, dict):
            raise ExperimentError(f"{source}: an experiment is a mapping (name, tasks, loops, models ...)")
        try:
            exp = cls.model_validate(data)
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(x) for x in err["loc"]) or "(top level)"
            raise ExperimentError(f"{source}: field '{where}': {err['msg']}") from None
        exp._source = source
        return exp

    def import_dirs(self) -> list[Path]:
        """Where this experiment's ``module:function`` tools are imported from: its directory, then
        ``python_path`` (each confined to the experiment's directory unless allowed by ``$LAB_TASK_ALLOW_PATHS``).

        Raises:
            ExperimentError: A ``python_path`` entry leads elsewhere or is not a directory.
        """
        from lab.tasks.dataset_tasks import DatasetTaskError, resolve_data_path

        dirs = [self._base_dir.resolve()]
        for i, d in enumerate(self.python_path):
            try:
                path = resolve_data_path(d, self._base_dir)
            except DatasetTaskError as e:
                raise ExperimentError(f"{self._source}: field 'python_path.{i}': {e}") from None
            if not path.is_dir():
                raise ExperimentError(f"{self._source}: field 'python_path.{i}': {path} is not a directory")
            dirs.append(path)
        return dirs

    def combos(self, tasks: list[Task] | None = None) -> list[Combo]:
        """Every combination, task-major (tasks load here unless given; their errors propagate)."""
        if tasks is None:
            tasks = [t for sel in self.tasks for t in sel.load(self._base_dir)]
        return [Combo(t, lp, m, s) for t in tasks for lp in self.loops for m in self.models for s in self.seeds]
