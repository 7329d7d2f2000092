"""Both trace store backends, SQLite and PostgreSQL, pass the same conformance suite."""

from __future__ import annotations

import pytest

from lab.traces.conformance import CHECKS


@pytest.fixture(params=["sqlite", "postgresql"])
def store_location(request, tmp_path):
    if request.param == "sqlite":
        return tmp_path / "traces.db"
    return request.getfixturevalue("pg_url")


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_store_conformance(check, store_location):
    check(store_location)
