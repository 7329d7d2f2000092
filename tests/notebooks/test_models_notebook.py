"""notebooks/models.ipynb runs top to bottom in a real kernel (nbval): the embedded model answers a
question and calls a tool."""

from __future__ import annotations


def test_models_notebook_runs_with_nbval(run_nbval):
    run_nbval("models.ipynb", timeout=600)
