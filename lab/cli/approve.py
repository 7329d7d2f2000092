"""``lab approve RUN_ID``: answer a run's pending tool-call approval and continue the run here."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from lab.cli.options import StoreOption, open_store


def approve(
    run_id: str = typer.Argument(..., help="The run waiting for an approval (`lab runs list` shows them)."),
    edit: str = typer.Option(None, "--edit", help="Run the call with these arguments instead (a JSON object)."),
    reject: str = typer.Option(None, "--reject", help="Do not run the call; the agent is told this reason."),
    model: str = typer.Option(None, "--model", help="Continue with this model (default: the run's)."),
    backend: str = typer.Option("docker", "--backend", help="Sandbox backend for tasks with a sandbox."),
    store: Path = StoreOption,
) -> None:
    """Approve (or --edit / --reject) the tool call a run waits on, then continue the run from its checkpoint."""
    from lab.agents.approvals import answer_pending, awaiting_approval, edited_arguments
    from lab.errors import LabError
    from lab.models import load_model

    if edit is not None and reject is not None:
        raise LabError("give at most one of --edit and --reject")
    arguments = None
    if edit is not None:
        try:
            arguments = edited_arguments(edit)
        except LabError as e:
            raise LabError(f"--edit: {e}") from None
    st = open_store(store, create=True)
    rid = st.get_run(run_id)["run_id"]
    pending = awaiting_approval(st).get(rid)
    if pending is None:
        raise LabError(f"run {rid} is not waiting for an approval (status {st.get_run(rid)['status']})")
    call = pending[0]
    typer.echo(f"{'editing' if edit else 'rejecting' if reject else 'approving'} {call['tool']}"
               f"({json.dumps(call['arguments'])}) at step {call['step']}")
    res = answer_pending(st, rid, "edit" if edit is not None else "reject" if reject is not None else "approve",
                         arguments=arguments, reason=reject, model=load_model(model) if model else None,
                         backend=backend)
    typer.echo(f"run {rid}: {res.status} ({res.stop_reason})" + (f", answer {res.answer!r}" if res.answer else ""))
    for p in res.pending:
        typer.echo(f"waiting again: {p['tool']}({json.dumps(p['arguments'])}); `lab approve {rid}`")
    if res.status == "failed":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``lab approve`` to the app."""
    app.command("approve")(approve)
