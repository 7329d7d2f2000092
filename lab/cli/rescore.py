"""``lab rescore STORE --scorer NAME``: score stored runs again with another scorer (no agent re-run)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from lab.tasks import Task
    from lab.traces.rows import RunRow


def rescore(
    store: Path = typer.Argument(..., help="The trace store."),
    scorer: str = typer.Option(..., "--scorer", help="A scorer name (`lab.scoring` registry)."),
    runs: list[str] = typer.Option(None, "--runs", help="Runs to score (repeatable; default: every done run)."),
    arg: list[str] = typer.Option(None, "--arg", help="Scorer argument KEY=VALUE (VALUE parsed as JSON when it is)."),
) -> None:
    """Score stored runs' answers with a scorer; the target is each run's task's gold answer where the task
    is known. Scores are appended to the runs (final, at their elapsed time)."""
    import json

    from lab.cli.options import open_store
    from lab.errors import LabError
    from lab.scoring import get_scorer
    from lab.scoring import rescore as rescore_runs

    kwargs = {}
    for a in arg or []:
        key, sep, value = a.partition("=")
        if not sep or not key:
            raise LabError(f"--arg {a!r}: give it as KEY=VALUE")
        try:
            kwargs[key] = json.loads(value)
        except ValueError:
            kwargs[key] = value
    scoring = get_scorer(scorer, **kwargs)
    st = open_store(store)
    tasks: dict[str | None, Task | None] = {}

    def task_of(run: RunRow) -> Task | None:
        key = run["task"]
        if key not in tasks:
            from lab.tasks import get_task

            try:
                tasks[key] = get_task(key) if key else None
            except LabError:
                tasks[key] = None
        return tasks[key]

    def target(run: RunRow) -> Any:
        t = task_of(run)
        return None if t is None else (t.scoring.target if t.scoring.target is not None else t.answer)

    def context(run: RunRow) -> dict:
        t = task_of(run)
        return {} if t is None else {"question": t.inputs.get("question", t.instructions)}

    df = rescore_runs(st, scoring, runs=runs or None, target=target, context=context)
    scored = df[df["skipped"].isna()]
    for s, g in scored.groupby("scorer"):
        typer.echo(f"{s}: {len(g)} scores, mean {g['value'].mean():.3g}")
    skipped = int(df["skipped"].notna().sum())
    typer.echo(f"scored {scored['run_id'].nunique()} runs" + (f"; {skipped} recorded no answer" if skipped else ""))


def register(app: typer.Typer) -> None:
    """Add ``lab rescore`` to the app."""
    app.command("rescore")(rescore)
