"""``open_sandbox``: the one way agents, tasks and humans get a sandbox, whatever the backend.

Backends are the entries of :data:`SANDBOX_BACKENDS`: a class taking ``(spec, *, recorder, run_id)``,
registered under the name a :class:`SandboxSpec` gives as ``backend`` (``docker``, ``local``); any module
of ``lab.sandbox`` may add one.
"""

from __future__ import annotations

from typing import Protocol

from lab.registry import Registry
from lab.sandbox.base import Sandbox, SandboxError
from lab.sandbox.spec import SandboxSpec
from lab.traces.recorder import RunRecorder


class SandboxBackend(Protocol):
    """Opens a sandbox (a backend is its class)."""

    def __call__(self, spec: SandboxSpec, *, recorder: RunRecorder | None = None,
                 run_id: str | None = None) -> Sandbox:
        """Start a sandbox of ``spec`` that records into ``recorder``, labelled with ``run_id``."""
        ...


SANDBOX_BACKENDS: Registry[SandboxBackend] = Registry("sandbox backend", modules=("lab.sandbox",),
                                                      error=SandboxError)
"""Sandbox backends by name."""


def open_sandbox(spec: SandboxSpec | None = None, *, recorder: RunRecorder | None = None,
                 run_id: str | None = None) -> Sandbox:
    """Start a sandbox. Use it as a context manager (or call ``close()``); it is also removed at exit.

    Args:
        spec: What to open (default: the hardened ``expertlab/base`` Docker sandbox).
        recorder: Records every exec and file operation as ``sandbox_exec`` / ``sandbox_file`` events.
        run_id: Run named in the sandbox's labels (default: the recorder's run).

    Returns:
        A running sandbox implementing :class:`~lab.sandbox.base.Sandbox`.

    Raises:
        SandboxUnavailable: The backend is not available here (no Docker engine).
        SandboxError: The sandbox could not start (missing image, bad spec for this machine), or no backend
            has the spec's name.
    """
    spec = spec or SandboxSpec()
    return SANDBOX_BACKENDS.get(spec.backend)(spec, recorder=recorder, run_id=run_id)
