"""``open_sandbox``: the one way agents, tasks and humans get a sandbox, whatever the backend."""

from __future__ import annotations

from lab.sandbox.base import Sandbox
from lab.sandbox.spec import SandboxSpec
from lab.traces.recorder import RunRecorder


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
        SandboxError: The sandbox could not start (missing image, bad spec for this machine).
    """
    spec = spec or SandboxSpec()
    if spec.backend == "docker":
        from lab.sandbox.docker import DockerSandbox

        return DockerSandbox(spec, recorder=recorder, run_id=run_id)
    from lab.sandbox.local import LocalSandbox

    return LocalSandbox(spec, recorder=recorder, run_id=run_id)
