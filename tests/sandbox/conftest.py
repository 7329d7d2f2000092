"""Sandbox fixtures: the backends every conformance test runs against, and a shared sandbox per backend."""

from __future__ import annotations

import pytest

from lab.sandbox import SandboxSpec, SandboxUnavailable, open_sandbox

BACKENDS = ["docker", "local-bwrap", "local-plain"]


def docker_ready() -> str | None:
    """None when Docker and the base image are usable, else why not (the base image is built if missing)."""
    try:
        from lab.sandbox.docker import docker_client

        docker_client()
    except SandboxUnavailable as e:
        return str(e)
    from lab.sandbox.images import ensure_image

    ensure_image("base", log=lambda _line: None)  # a failed build fails the tests loudly
    return None


def spec_for(backend: str, **overrides) -> SandboxSpec:
    """The spec of one conformance backend, with overrides."""
    if backend == "docker":
        reason = docker_ready()
        if reason:
            pytest.skip(f"no Docker engine: {reason}")
        return SandboxSpec(backend="docker", **overrides)
    if backend == "local-bwrap":
        from lab.sandbox.local import bwrap_works

        if not bwrap_works():
            pytest.skip("bubblewrap is not installed or cannot create namespaces here")
        return SandboxSpec(backend="local", bwrap=True, **overrides)
    return SandboxSpec(backend="local", bwrap=False, **overrides)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def spec(backend) -> SandboxSpec:
    """The default spec of the backend under test."""
    return spec_for(backend)


@pytest.fixture(scope="module")
def sb(spec):
    """One sandbox per backend, shared by the tests of a module that leave it as they found it."""
    with open_sandbox(spec) as box:
        yield box


@pytest.fixture
def fresh(backend):
    """A sandbox of its own for a test that changes its state; returns a factory taking spec overrides."""
    opened = []

    def make(**overrides):
        box = open_sandbox(spec_for(backend, **overrides))
        opened.append(box)
        return box

    yield make
    for box in opened:
        box.close()


@pytest.fixture(scope="module")
def docker_api():
    """The Docker client (skips without an engine; builds the base image when missing)."""
    reason = docker_ready()
    if reason:
        pytest.skip(f"no Docker engine: {reason}")
    from lab.sandbox.docker import docker_client

    return docker_client()


@pytest.fixture(scope="module")
def dsb(docker_api):
    """A default (hardened) Docker sandbox shared by a module's read-only checks."""
    with open_sandbox(SandboxSpec()) as box:
        yield box
