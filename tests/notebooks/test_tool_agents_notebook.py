"""notebooks/tool_agents.ipynb runs top to bottom in a real kernel (nbval): a ReAct agent on SmolLM2 calls
chemistry tools (every step a schema-valid tool call), and a scripted correct trajectory scores 1.0."""

from __future__ import annotations

import pytest


@pytest.mark.timeout(1500)
def test_tool_agents_notebook_runs_with_nbval(run_nbval):
    run_nbval("tool_agents.ipynb")
