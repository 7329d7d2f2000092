"""``lab serve [dashboard|NOTEBOOK]``: serve the dashboard, or any notebook or script, as a Panel app."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import secrets
import sys
from pathlib import Path

import typer

from lab.auth import load_users, users_path
from lab.cli.options import StoreOption
from lab.errors import LabError
from lab.traces.locations import is_postgres_url


class ServeError(LabError):
    """What ``lab serve`` was asked to serve cannot be served."""


def app_path(target: str) -> Path:
    """The file Panel serves for ``target``: ``dashboard`` (the widgets package's app) or a notebook/script.

    Raises:
        ServeError: The widgets package is not installed, or the file does not exist or is not a
            ``.ipynb``/``.py`` file.
    """
    if target == "dashboard":
        spec = importlib.util.find_spec("widgets")
        if spec is None or spec.origin is None:
            raise ServeError("the dashboard needs the `widgets` package (install Expert Lab with `make setup`)")
        return Path(spec.origin).parent / "app.py"
    path = Path(target)
    if not path.is_file():
        raise ServeError(f"nothing to serve at {path}: give `dashboard` or a notebook (.ipynb) or script (.py)")
    if path.suffix not in (".ipynb", ".py"):
        raise ServeError(f"{path}: Panel serves notebooks (.ipynb) and scripts (.py), not {path.suffix or 'this'}")
    return path


def dashboard_url(port: int = 5006, host: str = "localhost") -> str:
    """Where ``lab serve dashboard`` serves the dashboard (Panel names the page after ``app.py``)."""
    return f"http://{host}:{port}/app"


def is_loopback(address: str) -> bool:
    """Whether ``address`` only accepts connections from this machine."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def panel_command(target: str, *, port: int, address: str, show: bool, sign_in: bool = False,
                  oauth_provider: str | None = None, public_origin: str | None = None) -> list[str]:
    """The ``panel serve`` command line for ``target`` (``sign_in``: behind the users file's login page, or
    ``oauth_provider``'s sign-in; ``public_origin``: the HOST[:PORT] a reverse proxy serves it at)."""
    origin = f"{address}:{port}" if port else "*"
    cmd = [sys.executable, "-m", "panel", "serve", str(app_path(target)), "--address", address,
           "--port", str(port), "--allow-websocket-origin", origin, "--num-procs", "1"]
    if public_origin:
        cmd += ["--allow-websocket-origin", public_origin, "--use-xheaders"]
    if oauth_provider:
        cmd += ["--oauth-provider", oauth_provider]
    elif sign_in:
        cmd += ["--auth-module", str(Path(app_path("dashboard")).parent / "auth_module.py")]
    if address in ("127.0.0.1", "localhost"):
        cmd += ["--allow-websocket-origin", f"localhost:{port}"]
    if show:
        cmd.append("--show")
    return cmd


def serve(
    target: str = typer.Argument("dashboard", help="`dashboard`, or a notebook/script that marks objects .servable()."),
    store: Path = StoreOption,
    port: int = typer.Option(5006, help="Port to listen on."),
    address: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 to share on the network)."),
    show: bool = typer.Option(False, "--show", help="Open a browser tab."),
    sign_in: bool | None = typer.Option(
        None, "--sign-in/--no-sign-in",
        help="Require sign-in with the users file (default: on for any non-loopback address, where it cannot be "
             "turned off)."),
    users: Path = typer.Option(None, "--users", help="Users file (default: $LAB_USERS or .lab/users.json)."),
    cookie_secret: str = typer.Option(None, "--cookie-secret", envvar="LAB_COOKIE_SECRET", show_envvar=True,
                                      help="Signs session cookies (default: a fresh one, so a restart signs "
                                           "everyone out)."),
    oauth_provider: str = typer.Option(
        None, "--oauth-provider",
        help="Sign in through Panel's OAuth provider (github, google, azure, generic...; key and secret in "
             "$PANEL_OAUTH_KEY/$PANEL_OAUTH_SECRET) instead of passwords; roles still come from the users file."),
    public_origin: str = typer.Option(
        None, "--public-origin",
        help="HOST[:PORT] a TLS reverse proxy serves the dashboard at (its websocket origin)."),
) -> None:
    """Serve the dashboard (or a notebook) as a Panel app; stop with Ctrl-C."""
    env = dict(os.environ)
    if store is not None:
        env["LAB_STORE"] = str(store) if is_postgres_url(store) else str(Path(store).resolve())
    local = is_loopback(address)
    if sign_in is False and not local:
        raise ServeError(f"refusing to serve on {address} without sign-in: only a loopback address may use "
                         "--no-sign-in")
    if sign_in or not local or oauth_provider:
        path = (users or users_path()).resolve()
        if not load_users(path):
            raise ServeError(f"refusing to serve on {address} without sign-in: no users in {path} "
                             "(add one with `lab users add NAME --role viewer|grader|operator`)")
        env.pop("PANEL_BASIC_AUTH", None)
        env.update(LAB_USERS=str(path), LAB_SIGN_IN="1",
                   PANEL_COOKIE_SECRET=cookie_secret or env.get("PANEL_COOKIE_SECRET") or secrets.token_urlsafe(32))
        sign_in = True
    else:
        env.pop("LAB_SIGN_IN", None)
    cmd = panel_command(target, port=port, address=address, show=show, sign_in=bool(sign_in),
                        oauth_provider=oauth_provider, public_origin=public_origin)
    typer.echo(f"serving {cmd[4]} at http://{address}:{port}/{Path(cmd[4]).stem}")
    sys.stdout.flush()
    # Become the Panel server (same pid): a SIGTERM or Ctrl-C sent to `lab serve` reaches the server itself,
    # so nothing is left listening on the port.
    os.execve(cmd[0], cmd, env)


def register(app: typer.Typer) -> None:
    """Add ``lab serve`` to the app."""
    app.command("serve")(serve)
