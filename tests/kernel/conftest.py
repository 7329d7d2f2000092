"""Kernel fixtures: a real Docker sandbox (no network) from the repo-setup image, which carries ipykernel."""

from __future__ import annotations

import pytest

from lab.sandbox import SandboxSpec, SandboxUnavailable, open_sandbox


def kernel_spec() -> SandboxSpec:
    """The repo-setup image's spec (built when missing or stale); skips without a Docker engine."""
    try:
        from lab.sandbox.docker import docker_client

        docker_client()
    except SandboxUnavailable as e:
        pytest.skip(f"no Docker engine: {e}")
    from lab.sandbox.images import ensure_image

    return SandboxSpec(image=ensure_image("repo-setup", log=lambda _line: None))  # its content tag, not :latest


@pytest.fixture(scope="session")
def kernel_image() -> SandboxSpec:
    """The spec of the image with ipykernel (built when missing or stale); skips without a Docker engine."""
    return kernel_spec()


@pytest.fixture(scope="module")
def kbox():
    """One sandbox for the module's tests that leave its kernel running."""
    with open_sandbox(kernel_spec()) as box:
        yield box


@pytest.fixture
def fresh_box():
    """A sandbox of the test's own (for crashes, restores and attacks)."""
    opened = []

    def make():
        box = open_sandbox(kernel_spec())
        opened.append(box)
        return box

    yield make
    for box in opened:
        box.close()
