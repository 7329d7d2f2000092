"""notebooks/quickstart.ipynb runs top to bottom in a real kernel (nbval): DERA with the embedded SmolLM2 on two
MedQA-open questions, its trace (three model calls per round, by role) and its answer-match scores."""

from __future__ import annotations

import pytest


@pytest.mark.timeout(1500)
def test_quickstart_notebook_runs_with_nbval(run_nbval):
    run_nbval("quickstart.ipynb")
