"""Import METR-style run tables (JSONL, one row per run) as finished runs with a final score.

Each row needs ``run_id``, ``task_id`` and ``score`` (a number or null); ``task_family``, ``alias``,
``model``, ``time_limit``, ``started_at``, ``completed_at``, ``human_minutes`` and ``score_binarized`` are
understood, and every other column is kept in the run's config. ``alias == "human"`` marks a human
expert's run. Times are Unix seconds, Unix milliseconds (METR's tables) or ISO 8601 strings.

Elapsed working time: a human run's ``human_minutes`` (its baseliner's time), else
``completed_at - started_at``. For AI runs ``human_minutes`` is the task's human-time estimate and is
kept in the config, not used as elapsed time.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

import lab.traces.schema as schema
from lab.traces.errors import StoreError, TraceImportError
from lab.traces.files import iter_lines, parse_json
from lab.traces.jsonl import validation_message
from lab.traces.schema import Event, RunStatus, Score
from lab.traces.store import TraceStore, score_event

SOURCE = "metr"
HUMAN_ALIAS = "human"
_Number = StrictInt | StrictFloat


def _unix_seconds(v: object) -> object:
    """A time as Unix seconds: ISO 8601 text parsed, Unix milliseconds (METR's tables) scaled; anything else is
    left for the field's type to refuse."""
    if isinstance(v, str):
        try:
            return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
        except ValueError as e:
            raise ValueError(f"{v!r} is not an ISO 8601 time") from e
    if isinstance(v, int | float) and not isinstance(v, bool):
        return v / 1000.0 if v > 1e11 else float(v)
    return v


#: A time given as Unix seconds, Unix milliseconds or ISO 8601 text, held as Unix seconds.
_UnixTime = Annotated[StrictFloat | None, BeforeValidator(_unix_seconds)]


class MetrRow(BaseModel):
    """One row of a METR-style run table (extra columns are allowed and kept).

    Numbers must be finite; ``human_minutes`` and ``time_limit`` not negative; ``score_binarized`` 0 or 1; a
    run may not complete before it started.
    """

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)
    run_id: StrictStr | StrictInt
    task_id: StrictStr = Field(min_length=1)
    task_family: StrictStr | None = None
    alias: StrictStr | None = None
    model: StrictStr | None = None
    score: _Number | None
    score_binarized: Literal[0, 1] | None = None
    time_limit: Annotated[_Number, Field(ge=0)] | None = None
    started_at: _UnixTime = None
    completed_at: _UnixTime = None
    human_minutes: Annotated[_Number, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _in_order(self) -> MetrRow:
        if self.started_at is not None and self.completed_at is not None and self.completed_at < self.started_at:
            raise ValueError(f"completed_at is {self.started_at - self.completed_at:.0f} s before started_at")
        return self


def _elapsed(row: MetrRow, is_human: bool) -> float | None:
    if is_human and row.human_minutes is not None:
        return row.human_minutes * 60.0
    if row.started_at is not None and row.completed_at is not None:
        return max(0.0, row.completed_at - row.started_at)
    return None


def row_run(row: MetrRow) -> tuple[dict[str, Any], list[Event]]:
    """The run (fields and events) of one table row."""
    run_id = str(row.run_id)
    is_human = row.alias == HUMAN_ALIAS
    elapsed = _elapsed(row, is_human)
    started = row.started_at if row.started_at is not None else time.time()
    finished = row.completed_at if row.completed_at is not None else started + (elapsed or 0.0)
    config = {"source": SOURCE, **row.model_dump(mode="json")}
    end = elapsed or 0.0
    events = [Event(run_id, *schema.run_started(config=config), 0, started, 0.0)]
    for name in ("score", "score_binarized"):
        value = getattr(row, name)
        if name == "score_binarized" and value is None:
            continue
        ev = score_event(run_id, Score(name, None if value is None else float(value), provenance="rule",
                                       source=SOURCE, item_id=row.task_id), elapsed=end, ts=finished)
        ev.seq = len(events)
        events.append(ev)
    events.append(Event(run_id, *schema.run_finished(RunStatus.DONE.value), len(events),
                        finished, end))
    run = {"run_id": run_id, "task": row.task_id, "agent": row.alias, "model": row.model, "is_human": is_human,
           "status": RunStatus.DONE.value, "created_at": started, "finished_at": finished, "elapsed": elapsed,
           "config": config}
    return run, events


def read_rows(path: str | os.PathLike[str]) -> list[MetrRow]:
    """Parse and check a METR-style JSONL run table.

    Raises:
        TraceImportError: The file is missing or a row is malformed (message names file and line).
    """
    path = Path(path)
    rows: list[MetrRow] = []
    seen: dict[str, int] = {}
    for lineno, line in iter_lines(path):
        where = f"{path}:{lineno}"
        obj = parse_json(line, path, lineno)
        if not isinstance(obj, dict):
            raise TraceImportError(f"{where}: expected a JSON object (one run per line), got {type(obj).__name__}")
        try:
            row = MetrRow.model_validate(obj)
        except ValidationError as e:
            raise TraceImportError(f"{where}: {validation_message(e)}") from None
        rid = str(row.run_id)
        if rid in seen:
            raise TraceImportError(f"{where}: run_id {rid} repeats line {seen[rid]}")
        seen[rid] = lineno
        rows.append(row)
    if not rows:
        raise TraceImportError(f"{path}: no rows")
    return rows


def import_metr(store: TraceStore, path: str | os.PathLike[str]) -> list[str]:
    """Import a METR-style run table, all or nothing.

    Args:
        store: Where the runs go.
        path: A JSONL file, one run per line.

    Returns:
        The new run ids (the table's ``run_id`` values).

    Raises:
        TraceImportError: A row is malformed (file and line named); nothing was written.
        StoreError: A run id exists already; nothing was written.
    """
    runs = [row_run(row) for row in read_rows(path)]
    try:
        with store.transaction():
            return [store.restore_run(run, events) for run, events in runs]
    except StoreError as e:
        if "already exists" not in str(e):
            raise
        raise TraceImportError(f"{path}: field 'run_id': {e}; nothing was imported") from None
