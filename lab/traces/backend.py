"""Open a trace store by location: a SQLite file path, or a ``postgresql://`` URL."""

from __future__ import annotations

import os
from pathlib import Path

from lab.traces.locations import default_store_path, is_postgres_url
from lab.traces.store import TraceStore


def default_store_location() -> str | Path:
    """``$LAB_STORE`` when it is a ``postgresql://`` URL, else :func:`default_store_path`."""
    env = os.environ.get("LAB_STORE")
    return env if is_postgres_url(env) else default_store_path()


def open_trace_store(location: str | os.PathLike[str] | None = None, *, readonly: bool = False,
                     durability: str = "normal", recover: bool = True) -> TraceStore:
    """The trace store at ``location`` (default :func:`default_store_location`), SQLite or PostgreSQL.

    Raises:
        StoreError: It cannot be opened (the message names the file, or the URL without its password).
    """
    location = default_store_location() if location is None else location
    if is_postgres_url(location):
        from lab.traces.pg_store import PostgresTraceStore

        return PostgresTraceStore(str(location), readonly=readonly, durability=durability, recover=recover)
    return TraceStore(location, readonly=readonly, durability=durability, recover=recover)
