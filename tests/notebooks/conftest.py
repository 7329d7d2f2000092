"""Helpers for the notebook tests: run a notebook top to bottom in a real kernel."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


@pytest.fixture
def run_nbval(tmp_path):
    """``run_nbval(name, **env)``: nbval (outputs not compared) on ``notebooks/<name>``; fails with the tail of
    its report when a cell raises."""

    def run(name: str, timeout: float = 1400, **env: str) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
             "--rootdir", str(tmp_path), str(NOTEBOOKS / name)],
            cwd=NOTEBOOKS, env={**os.environ, "HF_HUB_OFFLINE": "1", **env}, capture_output=True, text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
        assert " passed" in proc.stdout
        return proc.stdout

    return run


@pytest.fixture
def run_without_docker(tmp_path):
    """``run_without_docker(name)``: execute ``notebooks/<name>`` with no Docker engine reachable (``DOCKER_HOST``
    pointing at a missing socket); returns the text of every output. A cell that raises fails the test."""

    def run(name: str, timeout: float = 600) -> str:
        import nbclient
        import nbformat

        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        old = {k: os.environ.get(k) for k in ("DOCKER_HOST", "HF_HUB_OFFLINE")}
        os.environ.update(DOCKER_HOST=f"unix://{tmp_path}/no-docker.sock", HF_HUB_OFFLINE="1")
        try:  # the kernel inherits this process's environment
            nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                    resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                         for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))

    return run
