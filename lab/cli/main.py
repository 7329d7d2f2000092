"""``lab``: the command-line entry point. Sub-commands live in modules of this package."""

from __future__ import annotations

import importlib
import sys

import typer

from lab.errors import LabError
from lab.secrets import redact

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Expert Lab: agents vs human experts.")
_state = {"debug": False}

# Each module registers its commands on ``app`` when imported.
_COMMAND_MODULES = ["doctor", "runs", "tasks", "imports", "sandbox", "run", "human", "serve", "demo", "grades",
                    "store", "users", "provenance", "approve", "rescore"]


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks.")) -> None:
    _state["debug"] = debug


for _name in _COMMAND_MODULES:
    importlib.import_module(f"lab.cli.{_name}").register(app)


def main() -> None:
    """Run the CLI; lab errors print one line (``--debug`` shows the traceback)."""
    try:
        code = app(standalone_mode=False)  # a command's typer.Exit(n) comes back as n here
        if isinstance(code, int) and code:
            sys.exit(code)
    except LabError as e:
        if _state["debug"] or "--debug" in sys.argv:
            raise
        typer.secho(f"error: {redact(str(e))}", fg="red", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.secho("aborted", fg="red", err=True)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:  # click usage errors and the like
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if _state["debug"] or "--debug" in sys.argv:
            raise
        typer.secho(f"error: {type(e).__name__}: {redact(str(e))} (rerun with --debug for the traceback)", fg="red",
                    err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
