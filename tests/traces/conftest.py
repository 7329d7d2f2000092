"""Fixtures for the trace store tests: the ``lab`` command run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_lab(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``lab ARGS...`` in a fresh interpreter; returns the completed process (text output)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "lab.cli.main", *args], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def lab():
    """``lab(*args)`` runs the CLI in a subprocess."""
    return run_lab
