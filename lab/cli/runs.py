"""``lab runs ...``: list and show stored runs."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from lab.cli.options import StoreOption, open_store

runs_app = typer.Typer(no_args_is_help=True, help="Stored runs.")


def _final_scores(store, run_id: str) -> dict[str, float | None]:
    rows = store.query(
        "SELECT scorer, dimension, value FROM scores WHERE run_id=? AND final=1 ORDER BY seq", (run_id,)
    )
    return {(s if d == "overall" else f"{s}.{d}"): v for s, d, v in rows}


def run_summary(store, run: dict) -> dict:
    """The stable one-object-per-run shape printed by ``lab runs list --json``."""
    return {
        "run_id": run["run_id"],
        "task": run["task"],
        "agent": run["agent"],
        "model": run["model"],
        "status": run["status"],
        "human": run["is_human"],
        "elapsed": run["elapsed"],
        "scores": _final_scores(store, run["run_id"]),
    }


@runs_app.command("list")
def list_runs(
    store: Path = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line per run."),
    status: str = typer.Option(None, help="Only runs with this status."),
) -> None:
    """List runs: id, task, agent, status, human or AI, elapsed time, final scores."""
    st = open_store(store)
    for run in st.list_runs(status=status):
        s = run_summary(st, run)
        if as_json:
            typer.echo(json.dumps(s))
        else:
            scores = " ".join(f"{k}={v:.3g}" if v is not None else f"{k}=-" for k, v in s["scores"].items())
            el = f"{s['elapsed']:.1f}s" if s["elapsed"] is not None else "-"
            who = "human" if s["human"] else "ai"
            typer.echo(f"{s['run_id']}  {s['task'] or '-'}  {s['agent'] or '-'}  {who}  {s['status']}  {el}  {scores}")


@runs_app.command("show")
def show_run(run_id: str, store: Path = StoreOption) -> None:
    """Show one run's config, status and events."""
    st = open_store(store)
    run = st.get_run(run_id)
    typer.echo(json.dumps({k: v for k, v in run.items()}, indent=2, default=str))
    for ev in st.events(run["run_id"]):
        attrs = json.dumps(ev.attrs, ensure_ascii=False)
        typer.echo(f"{ev.seq:>5} {ev.elapsed:8.2f}s {ev.kind:<14} {ev.agent or '':<12} {attrs[:160]}")


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
