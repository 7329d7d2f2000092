"""Every notebook under notebooks/ runs top to bottom in a real kernel (nbval, outputs not compared)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# notebooks tested here (others' notebooks carry their own tests)
NOTEBOOKS = ["dashboard.ipynb"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(name, tmp_path):
    env = dict(os.environ, LAB_STORE=str(tmp_path / "traces.db"), LAB_SAMPLE="1", HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                          "--nbval-current-env", str(REPO / "notebooks" / name)],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
