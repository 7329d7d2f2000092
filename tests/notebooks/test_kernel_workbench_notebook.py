"""notebooks/kernel_workbench.ipynb runs top to bottom in a real kernel (nbval): a scripted agent and a scripted
human solve the same repo-setup problem on the sandbox kernel, compared side by side and in the trace diff;
without Docker it says so and skips the sandbox cells."""

from __future__ import annotations

import pytest

NAME = "kernel_workbench.ipynb"


@pytest.mark.timeout(900)
def test_kernel_workbench_notebook_runs_with_nbval(run_nbval):
    run_nbval(NAME)


@pytest.mark.timeout(600)
def test_kernel_workbench_notebook_without_docker(run_without_docker):
    out = run_without_docker(NAME)
    assert "NO DOCKER ENGINE" in out and "skipped: no Docker engine" in out
