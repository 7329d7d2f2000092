"""Tasks from a data file — CSV, JSONL, Parquet, or a Hugging Face ``datasets`` dataset saved with
``save_to_disk`` — through a field mapping, without writing a suite. Read with ``datasets`` (the field's
loader; ``pip install 'expertlab[data]'``).

```yaml
tasks:
  - data: questions.csv                  # relative to the experiment file, confined to its directory
    fields: {prompt: question, answer: gold, id: qid, metadata: [source]}
    tools: [mytools:molar_mass]          # each task's tools (registered names or module:function)
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lab.errors import LabError
from lab.tasks.model import ALLOW_PATHS_ENV, Scoring, Task, TaskKind, allowed_roots

BUILDERS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}
"""The ``datasets`` builder of each data-file suffix (a directory is a ``save_to_disk`` dataset)."""


class DatasetTaskError(LabError):
    """A data file cannot be read as tasks (the message names the file, and the field or row)."""


class FieldMap(BaseModel):
    """Which column of a data file becomes which part of a task.

    Attributes:
        prompt: The column holding what the solver is told.
        answer: The column holding the gold answer.
        id: The column holding a unique task id (default: ``row-<n>``).
        metadata: Columns kept as the task's metadata.
    """

    model_config = ConfigDict(extra="forbid")

    prompt: str
    answer: str | None = None
    id: str | None = None
    metadata: list[str] = Field(default_factory=list)


def resolve_data_path(data: str, base_dir: Path) -> Path:
    """``data`` relative to ``base_dir``, which it must stay under unless an allowed directory holds it.

    Raises:
        DatasetTaskError: It leads elsewhere, or does not exist.
    """
    path = (base_dir / Path(data).expanduser()).resolve()
    roots = [base_dir.resolve(), *allowed_roots()]
    if not any(path == r or r in path.parents for r in roots):
        raise DatasetTaskError(f"data {data!r} resolves to {path}, outside the experiment's directory {base_dir}; "
                               f"allow its directory with ${ALLOW_PATHS_ENV}")
    if not path.exists():
        raise DatasetTaskError(f"no data file {path}")
    return path


def read_rows(path: Path, *, split: str | None = None) -> Any:
    """The rows of a data file or saved dataset, as a ``datasets.Dataset``.

    Raises:
        DatasetTaskError: Unknown suffix, no ``datasets`` installed, unreadable file, or a missing split.
    """
    try:
        import datasets
    except ImportError:
        raise DatasetTaskError(f"{path}: reading data files needs the datasets package "
                               "(pip install 'expertlab[data]')") from None
    datasets.disable_progress_bars()
    try:
        if path.is_dir():
            ds = datasets.load_from_disk(str(path))
        else:
            builder = BUILDERS.get(path.suffix.lower())
            if builder is None:
                raise DatasetTaskError(f"{path}: unknown data format {path.suffix!r}; give "
                                       f"{', '.join(BUILDERS)} or a dataset folder saved with save_to_disk")
            ds = datasets.load_dataset(builder, data_files=str(path), split="train")
    except DatasetTaskError:
        raise
    except Exception as e:  # noqa: BLE001 - any reader failure is a bad file, said in one line
        raise DatasetTaskError(f"{path}: cannot read it as a dataset: {type(e).__name__}: "
                               f"{str(e).splitlines()[0] if str(e) else ''}") from None
    if isinstance(ds, datasets.DatasetDict):
        name = split or ("train" if "train" in ds else next(iter(ds), None))
        if name not in ds:
            raise DatasetTaskError(f"{path}: no split {name!r}; splits: {', '.join(ds)}")
        ds = ds[name]
    elif split is not None:
        raise DatasetTaskError(f"{path}: 'split' is for a saved DatasetDict; this is one dataset")
    return ds


def load_dataset_tasks(path: Path, fields: FieldMap, *, split: str | None = None, tools: list[str] | None = None,
                       kind: TaskKind | None = None, scoring: Scoring | None = None) -> list[Task]:
    """One task per row of a data file.

    Args:
        path: The file (or saved dataset folder), already resolved.
        fields: Which columns are the prompt, answer, id and metadata.
        split: The split of a saved ``DatasetDict`` (default ``train``).
        tools: Tools each task gets.
        kind: The tasks' kind (default ``tools`` when tools are given, else ``qa``).
        scoring: How each task is scored (default ``normalized_match`` against the answer).

    Raises:
        DatasetTaskError: A mapped column is missing (named, with the columns there are), a row's prompt is
            empty, or ids repeat.
    """
    ds = read_rows(path, split=split)
    columns = list(ds.column_names)
    mapped = {"prompt": fields.prompt, "answer": fields.answer, "id": fields.id}
    for role, col in [*mapped.items(), *(("metadata", c) for c in fields.metadata)]:
        if col is not None and col not in columns:
            raise DatasetTaskError(f"{path}: fields.{role}: no column {col!r}; columns: {', '.join(columns)}")
    scoring = scoring or Scoring(scorer="normalized_match")
    kind = kind or ("tools" if tools else "qa")
    tasks, seen = [], set()
    for i, row in enumerate(ds):
        tid = str(row[fields.id]) if fields.id else f"row-{i}"
        where = f"{path}: row {i + 1}" + (f" (id {tid!r})" if fields.id else "")
        if tid in seen:
            raise DatasetTaskError(f"{where}: id repeats")
        seen.add(tid)
        try:
            task = Task(id=tid, kind=kind, instructions=str(row[fields.prompt] or ""), tools=list(tools or []),
                        scoring=scoring, answer=row[fields.answer] if fields.answer else None,
                        metadata={c: row[c] for c in fields.metadata}, source=str(path))
        except ValidationError as e:
            err = e.errors()[0]
            field = {"instructions": f"fields.prompt ({fields.prompt!r})", "id": f"fields.id ({fields.id!r})"}.get(
                str(err["loc"][0]) if err["loc"] else "", ".".join(map(str, err["loc"])))
            raise DatasetTaskError(f"{where}: {field}: {err['msg']}") from None
        tasks.append(task)
    if not tasks:
        raise DatasetTaskError(f"{path}: no rows")
    return tasks
