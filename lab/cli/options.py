"""Options shared by CLI commands."""

from __future__ import annotations

from pathlib import Path

import typer

from lab.traces.store import TraceStore

StoreOption = typer.Option(None, "--store", help="Trace store (default: the project's .lab/traces.db).")


def open_store(path: Path | None, *, readonly: bool = False) -> TraceStore:
    """Open the store named by ``--store`` (or the project default)."""
    return TraceStore(path, readonly=readonly)
