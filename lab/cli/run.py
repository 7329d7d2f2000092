"""``lab run EXPERIMENT.yaml``: run an experiment's combinations into the trace store."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from lab.cli.options import StoreOption, open_store


def run_experiment(
    experiment: Path = typer.Argument(..., help="Experiment YAML (tasks × loops × models × seeds)."),
    store: Path = StoreOption,
    concurrency: int = typer.Option(None, "--concurrency", "-j", min=1, help="Runs at once (default: the file's)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    executor: str = typer.Option("local", "--executor", help="Where runs execute: local (threads here) or ray."),
    address: str = typer.Option(None, "--address", help="Ray cluster address HOST:PORT (default: $RAY_ADDRESS "
                                "or the cluster running on this machine)."),
    wait: bool = typer.Option(False, "--wait", help="Wait for combinations another live `lab run` is running "
                              "(default: skip them as owned)."),
    otlp: str = typer.Option(None, "--otlp", help="Stream spans live to this OTLP/HTTP collector "
                             "(default: $LAB_OTLP_ENDPOINT)."),
) -> None:
    """Run an experiment; a rerun skips finished combinations and resumes interrupted ones, and leaves the ones
    another live `lab run` is running to it (or waits, with --wait). Exits 1 when a run failed or a scorer
    raised."""
    from lab.executors import get_executor
    from lab.experiment import Experiment
    from lab.preflight import check_experiment
    from lab.runner import Runner
    from lab.secrets import redact
    from lab.traces import live_otlp

    if otlp:
        os.environ["LAB_OTLP_ENDPOINT"] = otlp  # read by every run recorder (lab.traces.live_otlp)
    exp = Experiment.from_yaml(experiment)
    check_experiment(exp)  # before the store is opened: a bad experiment writes nothing
    runner_executor = get_executor(executor, address=address)
    st = open_store(store, create=True)
    runner = Runner(st, concurrency=concurrency, progress=progress, executor=runner_executor, wait=wait)
    batch = runner.run(exp)
    for o in batch.outcomes:
        scores = " ".join(f"{k}={v:.3g}" if isinstance(v, (int, float)) else f"{k}=-" for k, v in o.scores.items())
        answer = str(o.answer if o.answer is not None else "-").replace("\n", " ")[:60]
        typer.echo(redact(f"{o.status:<11} {o.task}  {o.loop}  {o.model}  seed={o.seed}  {o.run_id or '-'}  "
                          f"{o.stop_reason or o.error or ''}  answer={answer!r}  {scores}"))
    counts = {s: batch.count(s) for s in ("done", "skipped", "owned", "failed", "interrupted", "unavailable")}
    typer.echo(" ".join(f"{k}={v}" for k, v in counts.items() if v) + f"  store={st.path}")
    if (report := live_otlp.finish()) is not None:
        typer.echo(report.line(), err=True)
    bad = batch.errored
    if bad:
        scoring = sum(o.status != "failed" for o in bad)
        typer.secho(f"error: {len(bad)} of {len(batch.outcomes)} runs failed or errored ({len(bad) - scoring} "
                    f"failed, {scoring} with a scorer error); see `lab runs show RUN_ID`", fg="red", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``lab run`` to the app."""
    app.command("run")(run_experiment)
