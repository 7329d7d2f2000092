"""``lab import super|metr|inspect PATH``: runs recorded by other harnesses, as finished runs in the store."""

from __future__ import annotations

from pathlib import Path

import typer

from lab.cli.options import StoreOption, open_store

import_app = typer.Typer(no_args_is_help=True, help="Import runs recorded elsewhere (all or nothing).")


@import_app.command("super")
def import_super(
    path: Path = typer.Argument(..., help="SUPER trajectories: the root, one configuration's folder, or one task."),
    store: Path = StoreOption,
) -> None:
    """SUPER trajectories (history.ipynb + metrics.json): one run per task, metrics as final scores."""
    from lab.traces.importers.super import import_super as run_import

    ids = run_import(open_store(store, create=True), path)
    typer.echo(f"imported {len(ids)} SUPER runs from {path}")


@import_app.command("metr")
def import_metr(
    file: Path = typer.Argument(..., help="A METR-style run table (JSONL, one run per line)."),
    store: Path = StoreOption,
) -> None:
    """METR-style run tables: one run per row with its final score; alias 'human' marks human experts."""
    from lab.traces.importers.metr import import_metr as run_import

    ids = run_import(open_store(store, create=True), file)
    typer.echo(f"imported {len(ids)} METR runs from {file}")


@import_app.command("inspect")
def import_inspect(
    logs: list[Path] = typer.Argument(..., help="Inspect eval logs (.eval or .json)."),
    store: Path = StoreOption,
) -> None:
    """Inspect AI eval logs: one run per sample and epoch; human_agent samples as human expert runs."""
    from lab.traces.importers.inspect import import_inspect as run_import

    ids = run_import(open_store(store, create=True), list(logs))
    typer.echo(f"imported {len(ids)} Inspect runs from {len(logs)} log{'s' if len(logs) != 1 else ''}")


def register(app: typer.Typer) -> None:
    """Add the ``lab import`` commands to the app."""
    app.add_typer(import_app, name="import")
