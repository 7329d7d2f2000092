"""Fixtures of the local-backend attack tests: a bubblewrap sandbox, and a host directory outside it."""

from __future__ import annotations

import pytest

from lab.sandbox import SandboxSpec, open_sandbox


def bwrap_spec(**overrides) -> SandboxSpec:
    """A local spec that requires bubblewrap (skips the test where it cannot run)."""
    from lab.sandbox.local import bwrap_works

    if not bwrap_works():
        pytest.skip("bubblewrap is not installed or cannot create namespaces here")
    return SandboxSpec(backend="local", bwrap=True, **overrides)


@pytest.fixture
def box():
    """A fresh bubblewrap sandbox, closed after the test."""
    with open_sandbox(bwrap_spec()) as sb:
        yield sb


@pytest.fixture
def outside(tmp_path):
    """A host directory the sandbox must never write into (world-writable, so only the harness matters)."""
    d = tmp_path / "outside"
    d.mkdir()
    d.chmod(0o777)
    return d
