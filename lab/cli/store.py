"""``lab store``: whole-store operations (copy between SQLite and PostgreSQL)."""

from __future__ import annotations

import typer

from lab.traces.backend import open_trace_store
from lab.traces.errors import StoreError
from lab.traces.locations import is_postgres_url

store_app = typer.Typer(no_args_is_help=True, help="Whole trace stores.")


@store_app.command("copy")
def copy(
    src: str = typer.Argument(..., help="Store to copy: a SQLite file or a postgresql:// URL."),
    dst: str = typer.Argument(..., help="Where to copy it: a SQLite file or a postgresql:// URL."),
    force: bool = typer.Option(False, "--force", help="Replace what a non-empty destination holds."),
) -> None:
    """Copy every run, event, score and checkpoint of SRC into DST (e.g. a SQLite file into PostgreSQL)."""
    from pathlib import Path

    from lab.traces.copy import clear_store, copy_store, is_empty

    if not is_postgres_url(src) and not Path(src).is_file():
        raise StoreError(f"no trace store at {src}")
    if src == dst or (not is_postgres_url(src) and not is_postgres_url(dst)
                      and Path(src).resolve() == Path(dst).resolve()):
        raise StoreError("the source and destination are the same store")
    with open_trace_store(src, readonly=True) as source:
        target = open_trace_store(dst, recover=False)
        if not is_empty(target):
            if not force:
                target.close()
                raise StoreError(f"{target.path} already holds runs; pass --force to replace them")
            clear_store(target)
            target = open_trace_store(dst, recover=False)
        with target:
            n = copy_store(source, target)
    typer.echo(f"copied {n.runs} runs, {n.events} events, {n.scores} scores and {n.checkpoints} checkpoints "
               f"from {source.path} to {target.path}")


def register(app: typer.Typer) -> None:
    """Add the ``lab store`` commands to the app."""
    app.add_typer(store_app, name="store")
