"""LangGraph checkpoints for every run, in SQLite next to the trace store.

Each run is one LangGraph thread (``thread_id`` = run id) in ``<store>.checkpoints.db`` beside the trace
store, so a run can be paused and resumed, resumed after a kernel restart, and forked from any step.
One :class:`~langgraph.checkpoint.sqlite.SqliteSaver` is shared per file and process (it serialises its
writes with a lock, so concurrent runs in threads are safe).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from langgraph.checkpoint.sqlite import SqliteSaver

_savers: dict[str, SqliteSaver] = {}
_lock = threading.Lock()


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
            saver = _savers[str(path)] = SqliteSaver(conn)
            saver.setup()
        return saver
