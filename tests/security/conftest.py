"""Fixtures of the adversarial suite: the Docker engine (skips without one)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def docker_api():
    """The Docker client, with the base image built (skips the module without an engine)."""
    from lab.sandbox import SandboxUnavailable

    try:
        from lab.sandbox.docker import docker_client

        client = docker_client()
    except SandboxUnavailable as e:
        pytest.skip(f"no Docker engine: {e}")
    from lab.sandbox.images import ensure_image

    ensure_image("base", log=lambda _line: None)
    return client
