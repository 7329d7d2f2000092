"""notebooks/inspect_interop.ipynb runs top to bottom in a real kernel (nbval): a real offline `inspect eval`,
its import with a human_agent-style log, blind grading, the human-vs-AI dashboard, and the export back."""

from __future__ import annotations

import pytest


def test_notebook_runs_with_nbval(run_nbval):
    pytest.importorskip("inspect_ai", reason="needs the inspect extra: pip install 'expertlab[inspect]'")
    run_nbval("inspect_interop.ipynb", timeout=600)
