"""Fixtures for the agent-loop tests: a tiny in-process tool set and a local sandbox."""

from __future__ import annotations

import pytest

from lab.tools import ToolError, tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first.
        b: The second.
    """
    return a + b


@tool
def lookup(name: str) -> str:
    """Look a compound up.

    Args:
        name: The compound's name.
    """
    if name == "unobtainium":
        raise ToolError("no such compound: unobtainium")
    if name == "boom":
        raise RuntimeError("database connection lost")
    return f"{name}: C2H6O"


@pytest.fixture
def tools():
    return [add, lookup]


@pytest.fixture
def local_sandbox():
    """A real local sandbox (private directory; bubblewrap when installed)."""
    from lab.sandbox import SandboxSpec, open_sandbox

    with open_sandbox(SandboxSpec(backend="local")) as sb:
        yield sb
