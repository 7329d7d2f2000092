"""LangGraph checkpoints for every run, in SQLite next to the trace store.

Each run is one LangGraph thread (``thread_id`` = run id) in ``<store>.checkpoints.db`` beside the trace
store, so a run can be paused and resumed, resumed after a kernel restart, and forked from any step.
One :class:`~langgraph.checkpoint.sqlite.SqliteSaver` is shared per file and process (it serialises its
writes with a lock, so concurrent runs in threads are safe). Every string a checkpoint holds is passed through
:func:`lab.secrets.redact` before it is written, as the trace store does with events.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from lab.secrets import redact

_savers: dict[str, SqliteSaver] = {}
_lock = threading.Lock()


def _redacted(obj: Any) -> Any:
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        return {k: _redacted(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_redacted(v) for v in obj) if type(obj) in (list, tuple) else obj
    return obj


class RedactingSerializer(JsonPlusSerializer):
    """LangGraph's serializer, with secrets redacted from every string of a checkpoint's (JSON-only) state."""

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return super().dumps_typed(_redacted(obj))


def checkpoint_path(store_path: str | Path) -> Path:
    """The checkpoint database that belongs to a trace store file."""
    p = Path(store_path)
    return p.with_name(f"{p.stem}.checkpoints.db")


def checkpointer_for(store_path: str | Path) -> SqliteSaver:
    """The process-wide checkpointer for a trace store (created on first use, WAL mode)."""
    path = checkpoint_path(store_path).resolve()
    with _lock:
        saver = _savers.get(str(path))
        if saver is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, check_same_thread=False, timeout=60)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            saver = _savers[str(path)] = SqliteSaver(conn, serde=RedactingSerializer())
            saver.setup()
        return saver
