"""Users and roles of a shared dashboard: a users file of scrypt-hashed passwords, and what each role may do.

The users file is JSON, ``{"alice": {"role": "operator", "password": "scrypt$16384$8$1$<salt>$<hash>"}}``
(``$LAB_USERS``, default ``.lab/users.json``); passwords are never stored, only salted ``hashlib.scrypt``
hashes. Roles: ``viewer`` reads dashboards and traces, ``grader`` grades blind (their own queue only),
``operator`` reads, launches, cancels, forks and approves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from lab.errors import LabError

ROLES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "grader": frozenset({"grade"}),
    "operator": frozenset({"read", "launch", "cancel", "fork", "approve"}),
}
"""Role → the actions it may take."""

_N, _R, _P = 2**14, 8, 1
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class AuthError(LabError):
    """Not signed in, unknown user, or a role that may not do what was asked."""


def users_path() -> Path:
    """The users file: ``$LAB_USERS``, else ``.lab/users.json``."""
    return Path(os.environ.get("LAB_USERS") or ".lab/users.json")


def hash_password(password: str) -> str:
    """A salted scrypt hash of ``password`` (``scrypt$n$r$p$salt$hash``, base64 parts)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"scrypt${_N}${_R}${_P}${b64(salt)}${b64(digest)}"


def check_hash(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash made by :func:`hash_password` (constant-time compare)."""
    try:
        algo, n, r, p, salt, digest = stored.split("$")
        if algo != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(want))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def load_users(path: str | Path | None = None) -> dict[str, dict[str, str]]:
    """The users file as ``{name: {"role", "password"}}`` (an absent file: no users).

    Raises:
        AuthError: The file is not a users file (says which entry is wrong).
    """
    path = Path(path) if path is not None else users_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise AuthError(f"{path}: not a users file ({e})") from e
    if not isinstance(data, dict):
        raise AuthError(f"{path}: not a users file (expected an object of users)")
    for name, entry in data.items():
        if not isinstance(entry, dict) or entry.get("role") not in ROLES or not isinstance(entry.get("password"), str):
            raise AuthError(f"{path}: user {name!r} needs a role ({', '.join(ROLES)}) and a password hash")
    return data


def add_user(name: str, role: str, password: str, path: str | Path | None = None) -> Path:
    """Add (or replace) a user in the users file, written atomically with owner-only permissions.

    Raises:
        AuthError: A bad name, unknown role, empty password or unreadable users file.
    """
    if not _NAME.match(name) or name == "guest":
        raise AuthError(f"user name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-' (not 'guest')")
    if role not in ROLES:
        raise AuthError(f"role {role!r}: choose one of {', '.join(ROLES)}")
    if not password:
        raise AuthError("the password is empty")
    path = Path(path) if path is not None else users_path()
    users = load_users(path)
    users[name] = {"role": role, "password": hash_password(password)}
    return _write(path, users)


def remove_user(name: str, path: str | Path | None = None) -> Path:
    """Remove a user from the users file (their open sessions lose every right at their next action).

    Raises:
        AuthError: No such user, or an unreadable users file.
    """
    path = Path(path) if path is not None else users_path()
    users = load_users(path)
    if users.pop(name, None) is None:
        raise AuthError(f"{path}: no user {name!r}")
    return _write(path, users)


def _write(path: Path, users: dict) -> Path:
    """Write the users file atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(users, f, indent=2)
    os.replace(tmp, path)
    return path


def verify(name: str, password: str, path: str | Path | None = None) -> bool:
    """Whether ``name`` is a user of the users file and ``password`` is theirs."""
    try:
        entry = load_users(path).get(name)
    except AuthError:
        return False
    return entry is not None and check_hash(password, entry["password"])


@dataclass(frozen=True)
class Access:
    """Who uses a dashboard and what they may do.

    ``users`` ``None`` is one person's local dashboard (no sign-in, every action allowed, recorded as
    ``user``); otherwise the signed-in ``user``'s role is read from the users file at each check, so a
    changed role or a removed user takes effect at once.
    """

    user: str | None = None
    users: Path | None = None

    @property
    def signed_in(self) -> bool:
        """Whether this dashboard requires sign-in (served with a users file)."""
        return self.users is not None

    @property
    def role(self) -> str | None:
        """The user's role (``None``: local use, or not a known user)."""
        if self.users is None or not self.user:
            return None
        entry = load_users(self.users).get(self.user)
        return entry["role"] if entry else None

    def can(self, action: str) -> bool:
        """Whether the user may take ``action`` (``read``, ``grade``, ``launch``, ``cancel``, ``fork``, ``approve``)."""
        if self.users is None:
            return True
        role = self.role
        return role is not None and action in ROLES[role]

    def require(self, action: str) -> str:
        """The user's name, who may take ``action``.

        Raises:
            AuthError: Not signed in, or the role may not take ``action``.
        """
        if not self.can(action):
            who = f"{self.user} ({self.role or 'no role'})" if self.user else "a visitor who is not signed in"
            raise AuthError(f"{who} may not {action}")
        return self.user or ""


def record_action(store, run_id: str, action: str, user: str, **attrs) -> None:
    """Record in ``run_id``'s trace that ``user`` took ``action`` on it (``launch``, ``fork``, ``approve``...):
    a ``human_action`` event with ``lab.audit`` (the action) and ``lab.by`` (the user); ``attrs`` are further
    :func:`lab.traces.schema.human_action` parameters (``decision``, ``batch``, ``parent`` and ``step``)."""
    from lab.traces.schema import Event, human_action

    store.append(Event(run_id, *human_action(audit=action, by=user, **attrs), agent=f"user:{user}"))
