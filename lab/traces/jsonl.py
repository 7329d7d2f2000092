"""JSONL export and import of whole runs.

The file holds, for each run, one ``{"type": "run", ...}`` line with the run's fields and config,
followed by one ``{"type": "event", ...}`` line per event in ``seq`` order. Event ``attrs`` are written
exactly as stored, and re-encoded on import with the store's one JSON encoding, so a run that goes
out and comes back in has byte-identical event payloads.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr, ValidationError

from lab.traces.errors import StoreError, TraceImportError
from lab.traces.files import iter_lines, parse_json
from lab.traces.schema import (
    EVAL_LABEL,
    EVAL_NAME,
    EVAL_SCORE,
    FINAL_STATUSES,
    SCORE_DIMENSION,
    SCORE_ITEM_ID,
    SCORE_PROVENANCE,
    SCORE_SOURCE,
    Event,
    EventKind,
)
from lab.traces.store import TraceStore, dumps

_Number = StrictInt | StrictFloat


class RunRecord(BaseModel):
    """A run line of the JSONL format."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    type: Literal["run"]
    run_id: StrictStr
    task: StrictStr | None = None
    agent: StrictStr | None = None
    model: StrictStr | None = None
    seed: StrictInt | None = None
    is_human: StrictBool = False
    status: StrictStr
    created_at: _Number
    finished_at: _Number | None = None
    elapsed: _Number | None = None
    error: StrictStr | None = None
    owner: StrictStr | None = None
    parent_run_id: StrictStr | None = None
    fork_step: StrictInt | None = None
    batch_id: StrictStr | None = None
    config: dict[str, Any] = {}


class EventRecord(BaseModel):
    """An event line of the JSONL format."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    type: Literal["event"]
    run_id: StrictStr
    seq: StrictInt
    ts: _Number
    elapsed: _Number
    kind: StrictStr
    span_id: StrictStr | None = None
    parent_id: StrictStr | None = None
    agent: StrictStr | None = None
    attrs: dict[str, Any]


def validation_message(error: ValidationError) -> str:
    """One line for a pydantic error: the field, what it should be, and what it was."""
    errs = error.errors()
    loc = errs[0]["loc"]
    if not loc:
        if errs[0]["type"] in ("model_type", "dict_type"):
            return "expected a JSON object"
        return errs[0]["msg"].removeprefix("Value error, ")
    same = [e for e in errs if e["loc"][:1] == loc[:1]]
    if same[0]["type"] == "missing":
        return f"{loc[0]}: field required"
    if same[0]["type"] == "extra_forbidden":
        return f"{loc[0]}: unknown field"
    wants = [e["msg"].removeprefix("Input should be ").removeprefix("Value error, ") for e in same]
    return f"{loc[0]}: {' or '.join(dict.fromkeys(wants))} (got {same[0]['input']!r})"


def export_runs(store: TraceStore, run_ids: Iterable[str], out: IO[str]) -> int:
    """Write whole runs (run line, then its events) to ``out``.

    Args:
        store: Where the runs are.
        run_ids: Runs to export (unambiguous id prefixes are accepted).
        out: A text stream.

    Returns:
        The number of runs written.

    Raises:
        StoreError: A run id is unknown.
    """
    n = 0
    for rid in run_ids:
        run = store.get_run(rid)
        out.write(dumps({"type": "run", **run}) + "\n")
        for run_id, seq, ts, elapsed, kind, span_id, parent_id, agent, attrs in store.raw_events(run["run_id"]):
            head = dumps({"type": "event", "run_id": run_id, "seq": seq, "ts": ts, "elapsed": elapsed,
                          "kind": kind, "span_id": span_id, "parent_id": parent_id, "agent": agent})
            out.write(f'{head[:-1]},"attrs":{attrs}}}\n')  # the stored payload, byte for byte
        n += 1
    return n


def export_file(store: TraceStore, run_ids: Iterable[str], path: str | os.PathLike[str], *,
                force: bool = False) -> int:
    """:func:`export_runs` into a file, atomically: written under a temporary name, then moved into place.

    Args:
        store: Where the runs are.
        run_ids: Runs to export.
        path: The JSONL file to write.
        force: Replace ``path`` if it exists (a trace store or any other SQLite database is never replaced).

    Raises:
        StoreError: A run id is unknown, ``path`` exists (without ``force``) or is a database, or the file
            cannot be written. Nothing is left behind.
    """
    path = Path(path)
    refuse_overwrite(path, force=force)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as e:
        raise StoreError(f"cannot write {path}: {e.strerror}") from e
    tmp = Path(tmp_name)
    try:
        with open(fd, "w", encoding="utf-8") as f:
            n = export_runs(store, run_ids, f)
        if force:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if the file appeared meanwhile: never clobbers
    except FileExistsError as e:
        raise StoreError(f"{path} exists; pass --force to replace it") from e
    except OSError as e:
        raise StoreError(f"cannot write {path}: {e.strerror}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return n


def refuse_overwrite(path: Path, *, force: bool) -> None:
    """Refuse to write over an existing file (unless ``force``), and over a database even with ``force``.

    Raises:
        StoreError: What is in the way and how to proceed.
    """
    if path.is_dir():
        raise StoreError(f"{path} is a directory; give a file name to write")
    if not path.exists():
        return
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        head = b""
    base = path.with_name(path.name.rsplit("-", 1)[0]) if path.name.endswith(("-wal", "-shm", "-journal")) else None
    if head == b"SQLite format 3\0" or head[:4] in (b"\x37\x7f\x06\x82", b"\x37\x7f\x06\x83") or (
            base is not None and base.is_file()):
        raise StoreError(f"{path} is a trace store or other database; it is never overwritten (choose another file)")
    if not force:
        raise StoreError(f"{path} exists; pass --force to replace it")


def score_problem(attrs: dict[str, Any]) -> str | None:
    """What is wrong with a ``score`` event's attributes, or ``None`` (a name, a finite number or null)."""
    name = attrs.get(EVAL_NAME)
    if not isinstance(name, str) or not name:
        return "score event without a scorer name (gen_ai.evaluation.name)"
    value = attrs.get(EVAL_SCORE)
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                              or not math.isfinite(value)):
        return f"score {name!r} has value {value!r}, not a finite number or null"
    for key in (SCORE_DIMENSION, SCORE_ITEM_ID, SCORE_PROVENANCE, SCORE_SOURCE,
                EVAL_LABEL):
        if attrs.get(key) is not None and not isinstance(attrs[key], str):
            return f"score {name!r}: {key} is {attrs[key]!r}, not text"
    return None


def read_runs(path: str | os.PathLike[str]) -> list[tuple[dict[str, Any], list[Event]]]:
    """Parse and check a JSONL export without touching any store.

    Returns:
        ``(run fields, events)`` per run, in file order.

    Raises:
        TraceImportError: The file is missing, binary or not UTF-8, or a line is malformed (message names file
            and line).
    """
    path = Path(path)
    runs: list[tuple[dict[str, Any], list[Event]]] = []
    seen: set[str] = set()
    for lineno, line in iter_lines(path):
        where = f"{path}:{lineno}"
        obj = parse_json(line, path, lineno)
        kind = obj.get("type") if isinstance(obj, dict) else None
        try:
            if kind == "run":
                rec = RunRecord.model_validate(obj)
            elif kind == "event":
                ev = EventRecord.model_validate(obj)
            else:
                raise TraceImportError(f"{where}: expected an object with \"type\": \"run\" or \"event\"")
        except ValidationError as e:
            raise TraceImportError(f"{where}: {validation_message(e)}") from None
        if kind == "run":
            if rec.status not in FINAL_STATUSES:
                raise TraceImportError(f"{where}: run {rec.run_id} has status {rec.status!r}; only finished"
                                       f" runs ({', '.join(sorted(FINAL_STATUSES))}) can be imported")
            if rec.run_id in seen:
                raise TraceImportError(f"{where}: run {rec.run_id} appears twice")
            seen.add(rec.run_id)
            runs.append((rec.model_dump(exclude={"type"}), []))
            continue
        if not runs or runs[-1][0]["run_id"] != ev.run_id:
            raise TraceImportError(f"{where}: event of run {ev.run_id} does not follow that run's line")
        events = runs[-1][1]
        if ev.seq != len(events):
            raise TraceImportError(f"{where}: run {ev.run_id} event seq {ev.seq}, expected {len(events)}")
        if ev.kind == EventKind.SCORE.value and (problem := score_problem(ev.attrs)):
            raise TraceImportError(f"{where}: field 'attrs': {problem}")
        events.append(Event(ev.run_id, ev.kind, ev.attrs, ev.seq, ev.ts, ev.elapsed, ev.span_id,
                            ev.parent_id, ev.agent))
    if not runs:
        raise TraceImportError(f"{path}: no runs in the file")
    return runs


def import_file(store: TraceStore, path: str | os.PathLike[str]) -> list[str]:
    """Import every run of a JSONL export, all or nothing.

    Args:
        store: Where the runs go.
        path: The file written by :func:`export_file` (or ``lab runs export``).

    Returns:
        The imported run ids.

    Raises:
        TraceImportError: The file is missing or malformed; nothing was written.
        StoreError: A run already exists in ``store``; nothing was written.
    """
    runs = read_runs(path)
    try:
        with store.transaction():
            return [store.restore_run(run, events) for run, events in runs]
    except TraceImportError:
        raise
    except StoreError as e:
        if "already exists" not in str(e):
            raise
        raise TraceImportError(f"{path}: field 'run_id': {e}; nothing was imported") from None
