"""notebooks/judging_the_judges.ipynb runs top to bottom in a real kernel (nbval)."""

from __future__ import annotations


def test_notebook_runs_with_nbval(run_nbval):
    run_nbval("judging_the_judges.ipynb", timeout=600)
