"""A throwaway PostgreSQL cluster (Debian's ``postgresql`` package), for tests and benchmarks.

``initdb`` into a temporary folder, ``pg_ctl`` listening on a unix socket in that folder and a free loopback
port. PostgreSQL refuses to run as root, so as root the cluster runs as the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from lab.errors import LabError


class PostgresUnavailable(LabError):
    """No PostgreSQL server programs on this machine, or the cluster did not start."""


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresUnavailable("no PostgreSQL server programs (initdb); install Debian's 'postgresql' package")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    """A PostgreSQL cluster in a temporary folder, started by :meth:`start`, removed by :meth:`stop`.

    Attributes:
        url: ``postgresql://`` URL of its ``lab`` database over the loopback port.
    """

    def __init__(self) -> None:
        self.bindir = _bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="lab-pg-"))
        self.port = _free_port()
        self.user = "postgres" if os.geteuid() == 0 else None
        self.url = f"postgresql://lab@127.0.0.1:{self.port}/lab"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

    def start(self) -> PostgresCluster:
        """Create the cluster, start it, and create the ``lab`` role and database."""
        if self.user:
            shutil.chown(self.dir, self.user)
        data = self.dir / "data"
        steps = [
            ("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync"),
            ("pg_ctl", "-D", str(data), "-l", str(self.dir / "log"), "-w", "-t", "60", "-o",
             f"-k {self.dir} -p {self.port} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on",
             "start"),
        ]
        for step in steps:
            out = self._run(*step)
            if out.returncode:
                log = (self.dir / "log").read_text()[-2000:] if (self.dir / "log").exists() else ""
                self.stop()
                raise PostgresUnavailable(f"{step[0]} failed: {out.stderr.strip() or out.stdout.strip()} {log}")
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as c:
            c.execute("CREATE ROLE lab LOGIN SUPERUSER")
            c.execute("CREATE DATABASE lab OWNER lab")
        return self

    def new_database(self, name: str) -> str:
        """Create an empty database; return its URL."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}" OWNER lab')
        return f"postgresql://lab@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder."""
        if (self.dir / "data" / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
