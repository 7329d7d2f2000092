"""Options shared by CLI commands."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from lab.traces.backend import default_store_location, open_trace_store
from lab.traces.errors import StoreError
from lab.traces.locations import is_postgres_url
from lab.traces.store import TraceStore

# parser=str: a postgresql://host/db URL must reach open_store as typed (a Path would fold its '//').
StoreOption = typer.Option(None, "--store", parser=str,
                           help="Trace store: a SQLite file or a postgresql:// URL (default: $LAB_STORE, "
                                "else the project's .lab/traces.db).")


def open_store(path: str | Path | None, *, create: bool = False) -> TraceStore:
    """Open the store named by ``--store`` (or the project default).

    Args:
        path: The ``--store`` value.
        create: Create the store if it does not exist (commands that record or import runs).
            Commands that only read refuse a missing store, and open a store they cannot write
            (a read-only disk) read-only.

    Raises:
        StoreError: No store there (and ``create`` is false), or it cannot be opened.
    """
    location = str(path) if path is not None else default_store_location()
    if is_postgres_url(location):
        if not create:  # a database that holds no store is refused, not made one
            open_trace_store(location, readonly=True).close()
        return open_trace_store(location)
    path = Path(location)
    if create:
        return TraceStore(path)
    if not path.is_file():
        raise StoreError(f"no trace store at {path} (pass --store, or record or import runs first)")
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    return TraceStore(path, readonly=not writable)
