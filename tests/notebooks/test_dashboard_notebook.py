"""notebooks/dashboard.ipynb runs top to bottom in a real kernel (nbval) on a sample study."""

from __future__ import annotations


def test_dashboard_notebook_runs(run_nbval, tmp_path):
    run_nbval("dashboard.ipynb", timeout=600, LAB_STORE=str(tmp_path / "traces.db"), LAB_SAMPLE="1")
