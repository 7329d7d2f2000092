"""``lab demo``: a first experiment end to end on the embedded defaults."""

from __future__ import annotations

from pathlib import Path

import typer

from lab.cli.options import StoreOption, open_store
from lab.cli.serve import dashboard_url


def demo(store: Path = StoreOption) -> None:
    """Run DERA on three MedQA-open questions with the embedded model, then say where to look."""
    from lab.experiment import Experiment
    from lab.runner import Runner

    path = Path(__file__).resolve().parent.parent / "experiments" / "demo.yaml"
    exp = Experiment.from_yaml(path)
    st = open_store(store, create=True)
    typer.echo(f"Running the demo experiment ({path.name}): {exp.name}")
    batch = Runner(st, progress=True).run(exp)
    frame = batch.frame()
    cols = [c for c in frame.columns if c in ("task", "model", "status", "answer") or c.startswith("score")]
    typer.echo(frame[cols].to_string(index=False, max_colwidth=60))
    for col in [c for c in frame.columns if c.startswith("score.")][:1]:
        typer.echo(f"\n{col[6:]}: {int((frame[col] == 1.0).sum())}/{len(frame)} answers score 1")
    typer.echo("")
    typer.echo(f"Results:   {st.path}  (lab runs list --store {st.path})")
    typer.echo(f"Dashboard: lab serve dashboard --store {st.path}   then open {dashboard_url()}")
    typer.echo("Notebooks: jupyter lab notebooks/")
    if batch.count("failed"):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``lab demo`` to the app."""
    app.command("demo")(demo)
