"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("LAB_SHARED_DATA", REPO.parent / "shared" / "data"))
FULL = os.environ.get("LAB_FULL") == "1"


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.slow`` tests run only with ``LAB_FULL=1`` (``make test-full``)."""
    if FULL:
        return
    skip = pytest.mark.skip(reason="slow: set LAB_FULL=1 (make test-full) to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def store(tmp_path):
    """A fresh trace store in a temporary directory."""
    from lab.traces import TraceStore

    st = TraceStore(tmp_path / "traces.db")
    yield st
    st.close()


@pytest.fixture
def shared_data() -> Path:
    """The shared real data directory; skips the test with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set LAB_SHARED_DATA)")
    return SHARED_DATA
