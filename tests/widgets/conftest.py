"""Fixtures for the widget tests: a small synthetic study in a fresh store."""

from __future__ import annotations

import pytest


@pytest.fixture
def study(store):
    """A store holding the sample study (agents and experts on six tasks, judge and expert grades)."""
    from widgets.sample import sample_study

    ids = sample_study(store, tasks=4, seeds=2, experts=("alice", "bob"), events_per_run=30)
    return store, ids
