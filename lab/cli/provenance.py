"""``lab runs diff A B``: what differs between two runs' provenance (lab, packages, model, task, sandbox ...)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from lab.cli.options import StoreOption, open_store


def diff_runs(a: str = typer.Argument(..., help="A run id."), b: str = typer.Argument(..., help="Another run id."),
              store: Path = StoreOption,
              as_json: bool = typer.Option(False, "--json", help="One JSON object per difference.")) -> None:
    """List what differs between two runs' provenance; nothing printed (exit 0) when they match."""
    from lab.provenance import diff, of_run

    st = open_store(store)
    ra, rb = st.get_run(a)["run_id"], st.get_run(b)["run_id"]
    pa, pb = of_run(st, ra), of_run(st, rb)
    for run_id, p in ((ra, pa), (rb, pb)):
        if not p:
            typer.echo(f"run {run_id} recorded no provenance", err=True)
    for key, va, vb in diff(pa, pb):
        if as_json:
            typer.echo(json.dumps({"key": key, "a": va, "b": vb}, default=str))
        else:
            typer.echo(f"{key}: {json.dumps(va, default=str)} → {json.dumps(vb, default=str)}")


def register(app: typer.Typer) -> None:
    """Add ``lab runs diff`` to the ``lab runs`` commands."""
    from lab.cli.runs import runs_app

    runs_app.command("diff")(diff_runs)
