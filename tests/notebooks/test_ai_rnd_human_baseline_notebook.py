"""notebooks/ai_rnd_human_baseline.ipynb runs top to bottom in a real kernel (nbval): rd-optimise's starting and
reference solutions normalise to 0 and 1 in Docker, scripted human sessions and SmolLM2 agent runs are recorded,
and best-of-k by time budget is drawn; without Docker it says so and skips the sandbox cells."""

from __future__ import annotations

import pytest

NAME = "ai_rnd_human_baseline.ipynb"


@pytest.mark.timeout(1500)
def test_ai_rnd_notebook_runs_with_nbval(run_nbval):
    run_nbval(NAME)


@pytest.mark.timeout(700)
def test_ai_rnd_notebook_without_docker(run_without_docker):
    out = run_without_docker(NAME)
    assert "NO DOCKER ENGINE" in out and "skipped: no Docker engine" in out
