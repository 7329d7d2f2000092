"""``lab doctor``: what this machine offers and what to do about each gap."""

from __future__ import annotations

import typer

from lab.doctor import checks


def doctor(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Report Docker, base images, GPU/CUDA, the embedded model and Chromium."""
    import json

    results = checks()
    if as_json:
        typer.echo(json.dumps([r.__dict__ for r in results], indent=2))
        return
    for r in results:
        mark = typer.style("ok  ", fg="green") if r.ok else typer.style("gap ", fg="yellow")
        typer.echo(f"{mark} {r.name:<16} {r.detail}")
        if not r.ok and r.fix:
            typer.echo(f"     {'':<16} fix: {r.fix}")


def register(app: typer.Typer) -> None:
    """Add ``lab doctor`` to the app."""
    app.command("doctor")(doctor)
