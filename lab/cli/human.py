"""``lab human TASK``: a human expert attempts a task in its sandbox, recorded like an agent run."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from lab.cli.options import StoreOption, open_store

if TYPE_CHECKING:
    from lab.agents.human_jupyter import JupyterHumanSession


def human(
    task: str = typer.Argument(..., help="SUITE/ID, or a task file (FILE or FILE#ID)."),
    expert: str = typer.Option(None, "--expert", help="Who is working (default: your user name)."),
    store: Path = StoreOption,
    backend: str = typer.Option("docker", "--backend", help="Sandbox backend: docker or local."),
    jupyter: bool = typer.Option(False, "--jupyter", help="Work in JupyterLab (127.0.0.1, token) on a kernel inside "
                                 "the sandbox; %submit / %score / %pause / %quit in the notebook."),
    port: int = typer.Option(0, "--port", help="JupyterLab's port with --jupyter (0: a free one)."),
    resume: str = typer.Option(None, "--resume", help="Continue an interrupted session (its run id): same run, "
                               "its working time, the workdir as last snapshotted."),
) -> None:
    """Open an interactive shell in the task's sandbox with a pausable clock; `submit ANSWER` to finish."""
    from lab.agents.human import HumanSession
    from lab.errors import LabError
    from lab.sandbox.factory import SANDBOX_BACKENDS
    from lab.tasks import get_task, load_tasks
    from lab.tasks.environment import open_task_sandbox

    if backend not in SANDBOX_BACKENDS:
        raise LabError(f"--backend must be one of {', '.join(SANDBOX_BACKENDS.names())}, not {backend!r}")
    path, _, tid = task.partition("#")
    if Path(path).exists():
        tasks = load_tasks(path)
        chosen = [t for t in tasks if not tid or t.id == tid]
        if len(chosen) != 1:
            raise LabError(f"{path} holds {len(tasks)} tasks; name one as {path}#ID "
                           f"({', '.join(t.id for t in tasks[:5])}{' ...' if len(tasks) > 5 else ''})")
        t = chosen[0]
    else:
        t = get_task(task)
    opener = (lambda rec: open_task_sandbox(t, rec, backend=backend)) if t.sandbox is not None else None
    session: HumanSession | JupyterHumanSession
    if jupyter:
        from lab.agents.human_jupyter import JupyterHumanSession

        session = JupyterHumanSession(open_store(store, create=True), t, expert=expert or getpass.getuser(),
                                      sandbox=opener, port=port, resume=resume)
    else:
        session = HumanSession(open_store(store, create=True), t, expert=expert or getpass.getuser(), sandbox=opener,
                               resume=resume)
    try:
        result = session.run()
    finally:
        if session.sandbox is not None:
            session.sandbox.close()
    if result.status == "failed":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``lab human`` to the app."""
    app.command("human")(human)
