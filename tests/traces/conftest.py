"""Fixtures for the trace store tests: the ``lab`` command, in this process or as a real subprocess."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_lab(*args: str) -> subprocess.CompletedProcess:
    """Run ``lab ARGS...`` through the console entry point (``lab.cli.main.main``) in this process."""
    from lab.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    argv = sys.argv
    sys.argv = ["lab", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess(["lab", *args], code, out.getvalue(), err.getvalue())


def run_lab_process(*args: str) -> subprocess.CompletedProcess:
    """Run ``lab ARGS...`` in a fresh interpreter (text output)."""
    return subprocess.run([sys.executable, "-m", "lab.cli.main", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)


@pytest.fixture
def lab():
    """``lab(*args)`` runs the CLI's entry point in this process and returns its exit code and output."""
    return run_lab


@pytest.fixture
def lab_process():
    """``lab_process(*args)`` runs the CLI in a subprocess."""
    return run_lab_process


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster for the session (Debian's ``postgresql``, installed by scripts/machine.sh)."""
    from lab.traces.pg_server import PostgresCluster

    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
def pg_url(pg_cluster, request):
    """The URL of a new, empty PostgreSQL database for this test."""
    import re

    return pg_cluster.new_database("t_" + re.sub(r"\W", "_", request.node.name.lower())[:50] + f"_{os.getpid()}")
