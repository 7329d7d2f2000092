"""``lab users``: who may sign in to a shared dashboard (``lab serve``), and with which role."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from lab.auth import ROLES, AuthError, add_user, load_users, remove_user, users_path

users_app = typer.Typer(no_args_is_help=True, help="Users of a shared dashboard (sign-in and roles).")
UsersFileOption = typer.Option(None, "--users", help="Users file (default: $LAB_USERS or .lab/users.json).")


@users_app.command("add")
def add(
    name: str = typer.Argument(..., help="User name (what they type to sign in, and what their actions record)."),
    role: str = typer.Option(..., "--role", help=f"One of {', '.join(ROLES)}."),
    users: Path = UsersFileOption,
) -> None:
    """Add a user, or change one's role and password (asked for, or read from stdin when piped)."""
    if sys.stdin.isatty():
        password = typer.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    if role not in ROLES:
        raise AuthError(f"--role {role!r}: choose one of {', '.join(ROLES)}")
    path = add_user(name, role, password, users)
    typer.echo(f"{name} is a {role} in {path}")


@users_app.command("remove")
def remove(name: str = typer.Argument(..., help="User to remove."), users: Path = UsersFileOption) -> None:
    """Remove a user: their open sessions lose every right at their next action."""
    typer.echo(f"removed {name} from {remove_user(name, users)}")


@users_app.command("list")
def list_users(users: Path = UsersFileOption) -> None:
    """Print each user and role."""
    for name, entry in load_users(users or users_path()).items():
        typer.echo(f"{name}\t{entry['role']}")


def register(app: typer.Typer) -> None:
    """Add the ``lab users`` commands to the app."""
    app.add_typer(users_app, name="users")
