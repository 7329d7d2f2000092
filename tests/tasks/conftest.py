"""Fixtures for the task-suite tests: a Docker engine with the base image, or a skip with the reason."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def docker_base() -> None:
    """Skips unless a Docker engine answers; builds ``expertlab/base`` when missing."""
    from lab.sandbox import SandboxUnavailable

    try:
        from lab.sandbox.docker import docker_client

        docker_client()
    except SandboxUnavailable as e:
        pytest.skip(f"no Docker engine: {e}")
    from lab.sandbox.images import ensure_image

    ensure_image("base", log=lambda _line: None)
