"""Fixtures of the model tests: one embedded SmolLM2 shared by every test that needs the real model."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def smollm2():
    """The embedded SmolLM2 (loaded once per test session; converted on first use)."""
    from lab.models import load_model

    return load_model("smollm2")
