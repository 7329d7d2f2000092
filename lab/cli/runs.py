"""``lab runs ...``: list and show stored runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from lab.cli.options import StoreOption, open_store
from lab.traces.rows import RunRow
from lab.traces.schema import RunStatus

runs_app = typer.Typer(no_args_is_help=True, help="Stored runs.")


def run_summary(store, run: RunRow) -> dict:
    """The stable one-object-per-run shape printed by ``lab runs list --json``."""
    return {
        "run_id": run["run_id"],
        "task": run["task"],
        "agent": run["agent"],
        "model": run["model"],
        "status": run["status"],
        "human": run["is_human"],
        "elapsed": run["elapsed"],
        "scores": store.final_scores(run["run_id"]),
    }


@runs_app.command("list")
def list_runs(
    store: Path = StoreOption,
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line per run."),
    status: str = typer.Option(None, help="Only runs with this status."),
) -> None:
    """List runs: id, task, agent, status, human or AI, elapsed time, final scores."""
    from lab.agents.approvals import awaiting_approval

    st = open_store(store)
    waiting = awaiting_approval(st)
    for run in st.list_runs(status=status):
        s = run_summary(st, run)
        s["status"] = "awaiting_approval" if s["run_id"] in waiting else s["status"]
        if as_json:
            typer.echo(json.dumps(s))
        else:
            scores = " ".join(f"{k}={v:.3g}" if v is not None else f"{k}=-" for k, v in s["scores"].items())
            el = f"{s['elapsed']:.1f}s" if s["elapsed"] is not None else "-"
            who = "human" if s["human"] else "ai"
            typer.echo(f"{s['run_id']}  {s['task'] or '-'}  {s['agent'] or '-'}  {who}  {s['status']}  {el}  {scores}")


@runs_app.command("show")
def show_run(run_id: str, store: Path = StoreOption) -> None:
    """Show one run's config, status, provenance and events."""
    st = open_store(store)
    run = st.get_run(run_id)
    from lab.provenance import of_run

    typer.echo(json.dumps({**run, "provenance": of_run(st, run["run_id"])}, indent=2, default=str))
    for ev in st.events(run["run_id"]):
        attrs = json.dumps(ev.attrs, ensure_ascii=False)
        typer.echo(f"{ev.seq:>5} {ev.elapsed:8.2f}s {ev.kind:<14} {ev.agent or '':<12} {attrs[:160]}")


@runs_app.command("export")
def export_runs(
    run_ids: list[str] = typer.Argument(None, help="Runs to export (default: every finished run)."),
    out: Path = typer.Option(None, "-o", "--output", help="JSONL file to write (default: standard output)."),
    otlp: str = typer.Option(None, "--otlp", help="Send as OpenTelemetry spans to this OTLP/HTTP endpoint."),
    force: bool = typer.Option(False, "--force", help="Replace the output file if it exists (never a store)."),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl, or inspect: one Inspect eval log (-o FILE.eval)."),
    store: Path = StoreOption,
) -> None:
    """Export whole runs as JSONL (or as OTLP spans with --otlp)."""
    from lab.traces import jsonl

    if out is not None:
        jsonl.refuse_overwrite(out, force=force)  # before any work
    st = open_store(store)
    ids = run_ids or [r["run_id"] for r in st.list_runs() if r["status"] != RunStatus.RUNNING.value]
    if fmt == "inspect":
        from lab.traces import inspect_export

        if out is None:
            raise typer.BadParameter("--format inspect needs -o FILE.eval (or FILE.json)")
        n = inspect_export.export_file(st, ids, out)
        typer.echo(f"wrote {n} runs to {out} (an Inspect eval log)", err=True)
    elif fmt != "jsonl":
        raise typer.BadParameter(f"--format is jsonl or inspect, not {fmt!r}")
    elif otlp:
        from lab.traces import otlp as otlp_export

        n = otlp_export.export_runs(st, ids, otlp_export.otlp_http_exporter(otlp))
        typer.echo(f"sent {n} spans of {len(ids)} runs to {otlp}", err=True)
    elif out is None:
        jsonl.export_runs(st, ids, sys.stdout)
    else:
        n = jsonl.export_file(st, ids, out, force=force)
        typer.echo(f"wrote {n} runs to {out}", err=True)


@runs_app.command("import")
def import_runs(file: Path = typer.Argument(..., help="A JSONL file written by `lab runs export`."),
                store: Path = StoreOption) -> None:
    """Import whole runs from a JSONL export (all or nothing)."""
    from lab.traces import jsonl

    ids = jsonl.import_file(open_store(store, create=True), file)
    typer.echo(f"imported {len(ids)} runs from {file}")


def register(app: typer.Typer) -> None:
    """Add the ``lab runs`` commands to the app."""
    app.add_typer(runs_app, name="runs")
