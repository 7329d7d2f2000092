"""Reading files to import, defensively: every refusal is one :class:`TraceImportError` naming the file and line.

Limits: a file is at most ``$LAB_IMPORT_MAX_BYTES`` (1 GiB) and a JSONL line at most ``$LAB_IMPORT_MAX_LINE_BYTES``
(64 MiB); text must be UTF-8 without NUL bytes (a binary file says so); JSON may not hold ``NaN`` or
``Infinity`` (not JSON, though Python writes them) nor nest deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lab.traces.errors import TraceImportError

MAX_DEPTH = 100
"""Deepest nesting of JSON arrays and objects accepted."""


def _limit(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _depth(text: str) -> int:
    """Deepest bracket nesting outside strings (cheap when the text holds few brackets)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return 0
    depth = deepest = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_json(text: str, path: str | os.PathLike[str], line: int | None = None) -> Any:
    """Parse one JSON value: a whole file's (``line`` None) or one JSONL line's.

    Raises:
        TraceImportError: Not JSON (file, line and column named), ``NaN``/``Infinity``, or nested too deeply.
    """
    where = f"{path}:{line}" if line is not None else str(path)
    if _depth(text) > MAX_DEPTH:
        raise TraceImportError(f"{where}: JSON nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as e:
        if line is None:
            raise TraceImportError(f"{path}:{e.lineno}: not JSON ({e.msg} at column {e.colno})") from None
        raise TraceImportError(f"{where}: not JSON ({e.msg} at column {e.colno})") from None
    except ValueError as e:
        raise TraceImportError(f"{where}: not JSON ({e})") from None
    except RecursionError:
        raise TraceImportError(f"{where}: JSON nested too deeply") from None


def _decode(raw: bytes, path: Path, first_line: int = 1) -> str:
    nul = raw.find(b"\0", 0, 8192)
    if nul >= 0:
        line = first_line + raw[:nul].count(b"\n")
        raise TraceImportError(f"{path}:{line}: a binary file (NUL byte at offset {nul}), not text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = first_line + raw[:e.start].count(b"\n")
        raise TraceImportError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x})") from None


def read_text(path: str | os.PathLike[str]) -> str:
    """A whole text file, checked (size, UTF-8, no NUL bytes).

    Raises:
        TraceImportError: Missing, unreadable, too large, binary or not UTF-8 (file and line named).
    """
    path = Path(path)
    limit = _limit("LAB_IMPORT_MAX_BYTES", 1 << 30)
    try:
        with open(path, "rb") as f:
            raw = f.read(limit + 1)
    except OSError as e:
        raise TraceImportError(f"cannot read {path}: {e.strerror}") from e
    if len(raw) > limit:
        raise TraceImportError(f"{path}: larger than the {limit:,}-byte import limit ($LAB_IMPORT_MAX_BYTES)")
    return _decode(raw, path)


def read_json(path: str | os.PathLike[str]) -> Any:
    """A whole JSON file, checked as :func:`read_text` and :func:`parse_json` do."""
    return parse_json(read_text(path), path)


def iter_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each non-blank line of a JSONL file, checked one line at a time.

    Raises:
        TraceImportError: Missing or unreadable, a line too long, binary or not UTF-8 (file and line named).
    """
    path = Path(path)
    max_line = _limit("LAB_IMPORT_MAX_LINE_BYTES", 64 << 20)
    try:
        f = open(path, "rb")
    except OSError as e:
        raise TraceImportError(f"cannot read {path}: {e.strerror}") from e
    with f:
        head = f.read(8192)
        if b"\0" in head:  # a binary file: say so, not that its first line is not UTF-8
            _decode(head, path)
        f.seek(0)
        for lineno, raw in enumerate(iter(lambda: f.readline(max_line + 1), b""), 1):
            if len(raw) > max_line and not raw.endswith(b"\n"):
                raise TraceImportError(f"{path}:{lineno}: line longer than {max_line:,} bytes "
                                       "($LAB_IMPORT_MAX_LINE_BYTES)")
            text = _decode(raw, path, lineno)
            if text.strip():
                yield lineno, text
