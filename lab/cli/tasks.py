"""``lab tasks list|show|validate``: the bundled and user task suites."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml

from lab.tasks import TaskError, check_task, get_task, list_suites, load_suite, load_tasks

tasks_app = typer.Typer(no_args_is_help=True, help="Task suites: list, show and validate tasks.")
DirOption = typer.Option(None, "--dir", help="Extra directory of user suites (also: $LAB_TASK_DIRS).")


@tasks_app.command("list")
def list_cmd(
    suite: str = typer.Argument(None, help="List this suite's tasks instead of the suites."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    ci: bool = typer.Option(False, "--ci", help="Only the suite's CI subset."),
    dirs: list[Path] = DirOption,
) -> None:
    """List suites (name, format, task count, description), or the tasks of one suite."""
    if suite is None:
        for s in list_suites(dirs):
            n = len(s.load())
            row = {"suite": s.name, "format": s.format, "tasks": n, "ci": len(s.ci), "bundled": s.bundled,
                   "description": s.description, "path": str(s.path)}
            typer.echo(json.dumps(row) if as_json else f"{s.name:<14} {s.format:<11} {n:>5} tasks  {s.description}")
        return
    for t in load_suite(suite, subset="ci" if ci else "all", extra_dirs=dirs):
        row = {"task": t.key, "kind": t.kind, "image": t.sandbox.image if t.sandbox else None,
               "gpus": t.resources.gpus, "scorer": t.scoring.scorer or ("metr" if t.metr else "script")}
        if as_json:
            typer.echo(json.dumps(row))
        else:
            first = t.instructions.strip().splitlines()[0][:70]
            typer.echo(f"{t.key:<40} {t.kind:<6} {row['scorer']:<16} {first}")


@tasks_app.command("show")
def show_cmd(key: str = typer.Argument(..., help="SUITE/ID"), as_json: bool = typer.Option(False, "--json"),
             dirs: list[Path] = DirOption) -> None:
    """Show one task in full."""
    data = get_task(key, extra_dirs=dirs).model_dump(mode="json", exclude_defaults=True)
    typer.echo(json.dumps(data, indent=2) if as_json else yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


@tasks_app.command("validate")
def validate_cmd(
    targets: list[str] = typer.Argument(None, help="Suite names or paths (files, suite or family dirs); "
                                                   "default: every suite."),
    dirs: list[Path] = DirOption,
    allow: list[Path] = typer.Option(None, "--allow-path", help="A host directory task files may copy from besides "
                                     "their own (repeatable; also: $LAB_TASK_ALLOW_PATHS)."),
) -> None:
    """Load and check tasks (schema, scorer, sandbox image, files); exit 1 when anything is wrong."""
    names = targets or [s.name for s in list_suites(dirs)]
    problems, count = [], 0
    allow = allow or []
    for target in names:
        try:
            tasks = (load_tasks(target, allow_paths=allow) if Path(target).exists()
                     else load_suite(target, extra_dirs=dirs, allow_paths=allow))
        except TaskError as e:
            problems.append(str(e))
            continue
        count += len(tasks)
        for t in tasks:
            problems += check_task(t)
    for p in problems:
        typer.secho(p, fg="red", err=True)
    typer.echo(f"{count} task(s) checked, {len(problems)} problem(s)")
    if problems:
        raise SystemExit(1)  # the exit status scripts test for (typer.Exit is swallowed outside standalone mode)


def register(app: typer.Typer) -> None:
    """Add the ``lab tasks`` commands to the app."""
    app.add_typer(tasks_app, name="tasks")
