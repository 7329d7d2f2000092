"""Reading JSON Lines task files with errors that name the file and line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lab.tasks.errors import TaskSpecError
from lab.traces.errors import TraceImportError
from lab.traces.files import iter_lines, parse_json


def iter_jsonl(path: str | Path, required: tuple[str, ...] = ()) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each non-blank line.

    Args:
        path: The JSONL file.
        required: Keys every record must have.

    Raises:
        TaskSpecError: The file cannot be read, is binary or not UTF-8, a line is not a JSON object, or lacks a
            required key (file and line named).
    """
    try:
        for n, line in iter_lines(path):
            rec = parse_json(line, path, n)
            if not isinstance(rec, dict):
                raise TaskSpecError(f"{path}:{n}: expected a JSON object, got {type(rec).__name__}")
            missing = [k for k in required if k not in rec]
            if missing:
                raise TaskSpecError(f"{path}:{n}: missing field(s) {missing}")
            yield n, rec
    except TraceImportError as e:  # unreadable, binary, not UTF-8, not JSON, nested too deeply: file and line named
        raise TaskSpecError(str(e)) from None
