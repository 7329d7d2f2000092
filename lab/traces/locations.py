"""Where a trace store lives: a SQLite file (the project's default) or a PostgreSQL server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeGuard


def is_postgres_url(location: object) -> TypeGuard[str]:
    """Whether a store location names a PostgreSQL server rather than a SQLite file."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))

def default_store_path() -> Path:
    """The project's store: ``$LAB_STORE``, else ``.lab/traces.db`` in the nearest directory
    (this one or an ancestor) that has a ``.lab`` folder, else in the current directory."""
    env = os.environ.get("LAB_STORE")
    if env:
        return Path(env)
    cwd = Path.cwd()
    for d in (cwd, *cwd.parents):
        if (d / ".lab").is_dir():
            return d / ".lab" / "traces.db"
    return cwd / ".lab" / "traces.db"
