"""Sign-in for ``lab serve``: a Bokeh ``--auth-module`` (Panel's login and logout pages) that checks the
scrypt hashes of the users file named by ``$LAB_USERS``. The signed-in name lives in Panel's signed ``user``
cookie (``--cookie-secret``), so ``pn.state.user`` is the user in every session; a request without it
(page, websocket, autoload) is sent to the login page."""

from __future__ import annotations

from typing import Any

from panel import auth as panel_auth
from panel.config import config
from panel.io.resources import LOCAL_DIST

from lab.auth import load_users, users_path, verify

login_url = "/login"
logout_url = "/logout"


class _Offline:
    """A Panel page template rendered with Panel's own files from this server instead of its CDN."""

    def __init__(self, template: Any) -> None:
        self.template = template

    def render(self, **kwargs: Any) -> str:
        return self.template.render(**{**kwargs, "PANEL_CDN": f"/{LOCAL_DIST}"})


def get_user(request_handler) -> str | None:
    """The signed-in user of a request (``None``: not signed in, or no longer in the users file)."""
    raw = request_handler.get_secure_cookie("user", max_age_days=config.oauth_expiry)
    if not raw:
        return None
    name = raw.decode("utf-8")
    try:
        return name if name in load_users(users_path()) else None
    except Exception:  # noqa: BLE001 - an unreadable users file signs nobody in
        return None


def session_user() -> str | None:
    """The signed-in user of the current Panel session, from the signed ``user`` cookie alone (Panel's
    ``pn.state.user`` would also take an unsigned ``is_guest`` cookie as the user ``guest``)."""
    from panel.io.state import state
    from tornado.web import decode_signed_value

    raw = state.cookies.get("user") if state.curdoc is not None else None
    if not raw or not config.cookie_secret:
        return None
    value = decode_signed_value(config.cookie_secret, "user", raw, max_age_days=config.oauth_expiry)
    return value.decode("utf-8") if value else None


class LoginHandler(panel_auth.BasicLoginHandler):
    """Panel's login page (served offline), checking the users file's hashed passwords."""

    _login_template = _Offline(panel_auth.BASIC_LOGIN_TEMPLATE)

    def _validate(self, username: str, password: str) -> bool:
        return verify(username, password, users_path())


class LogoutHandler(panel_auth.LogoutHandler):
    """Panel's logout page (served offline): clears the session cookies."""

    _logout_template = _Offline(panel_auth.LOGOUT_TEMPLATE)
