"""The sandbox conformance suite (:mod:`lab.sandbox.conformance`) on every backend: Docker, local with and
without bubblewrap."""

from __future__ import annotations

import threading
import warnings

import pytest

from lab.sandbox import SandboxSpec, open_sandbox
from lab.sandbox.conformance import CHECKS, SandboxCase


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_sandbox_conformance(check, spec, sb, backend):
    check(SandboxCase(spec, shared=sb, switch_user=backend != "local-plain"))


def test_unisolated_local_sandbox_warns_once(monkeypatch):
    from lab.sandbox import local

    monkeypatch.setattr(local, "_warned", threading.Event())
    with pytest.warns(local.UnisolatedWarning, match="WITHOUT isolation"):
        open_sandbox(SandboxSpec(backend="local", bwrap=False)).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        open_sandbox(SandboxSpec(backend="local", bwrap=False)).close()
