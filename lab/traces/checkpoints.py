"""LangGraph checkpoints for every run, in SQLite next to the trace store (or in its PostgreSQL database).

Each run is one LangGraph thread (``thread_id`` = run id) in ``<store>.checkpoints.db`` beside the trace
store (for a ``postgresql://`` store, LangGraph's ``PostgresSaver`` in the same database), so a run can be
paused and resumed, resumed after a kernel restart, and forked from any step.
One :class:`~langgraph.checkpoint.sqlite.SqliteSaver` is shared per file and process (it serialises its
writes with a lock, so concurrent runs in threads are safe). Every string a checkpoint holds is passed through
:func:`lab.secrets.redact` before it is written, as the trace store does with events.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver

from lab.secrets import redact

_savers: dict[str, BaseCheckpointSaver[str]] = {}
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
        """LangGraph's typed encoding of ``obj`` with its strings redacted."""
        return super().dumps_typed(_redacted(obj))


def checkpoint_path(store_path: str | Path) -> Path:
    """The checkpoint database that belongs to a trace store file."""
    p = Path(store_path)
    return p.with_name(f"{p.stem}.checkpoints.db")


def checkpointer_for(store_path: str | Path) -> BaseCheckpointSaver[str]:
    """The process-wide checkpointer for a trace store (created on first use): a SQLite file (WAL mode)
    beside a store file, or LangGraph's Postgres checkpointer for a ``postgresql://`` store URL."""
    from lab.traces.locations import is_postgres_url

    if is_postgres_url(store_path):
        return _postgres_saver(str(store_path))
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


def _postgres_saver(url: str) -> BaseCheckpointSaver[str]:
    """One ``PostgresSaver`` per database URL and process, on its own autocommit connection."""
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    from lab.secrets import redact_url
    from lab.traces.errors import StoreError

    with _lock:
        saver = _savers.get(url)
        if saver is None:
            try:
                conn = psycopg.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row,
                                       connect_timeout=10)
                saver = PostgresSaver(conn, serde=RedactingSerializer())
                # One set-up (migrations) at a time: several processes may start together. Polled, not waited
                # for: a migration builds an index CONCURRENTLY, which waits for every open transaction,
                # including a blocked lock request (a deadlock).
                while True:
                    row = conn.execute("SELECT pg_try_advisory_lock(hashtext('lab.checkpoints')) AS taken").fetchone()
                    if row is not None and row["taken"]:
                        break
                    time.sleep(0.05)
                try:
                    saver.setup()
                finally:
                    conn.execute("SELECT pg_advisory_unlock(hashtext('lab.checkpoints'))")
            except psycopg.Error as e:
                raise StoreError(f"cannot open the checkpoints in {redact_url(url)}: "
                                 f"{' '.join(str(e).split())}") from None
            _savers[url] = saver
        return saver
