"""Options shared by CLI commands."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from lab.traces.store import StoreError, TraceStore, default_store_path

StoreOption = typer.Option(None, "--store", help="Trace store (default: the project's .lab/traces.db).")


def open_store(path: Path | None, *, create: bool = False) -> TraceStore:
    """Open the store named by ``--store`` (or the project default).

    Args:
        path: The ``--store`` value.
        create: Create the store if it does not exist (commands that record or import runs).
            Commands that only read refuse a missing store, and open a store they cannot write
            (a read-only disk) read-only.

    Raises:
        StoreError: No store there (and ``create`` is false), or it cannot be opened.
    """
    path = Path(path) if path is not None else default_store_path()
    if create:
        return TraceStore(path)
    if not path.is_file():
        raise StoreError(f"no trace store at {path} (pass --store, or record or import runs first)")
    writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    return TraceStore(path, readonly=not writable)
