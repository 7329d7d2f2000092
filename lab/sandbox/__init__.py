"""Sandboxes where agents and human experts run commands: Docker (hardened containers) or local (bubblewrap).

Open one with :func:`open_sandbox`; never import a backend directly.
"""

from lab.sandbox.base import ExecResult, Sandbox, SandboxError, SandboxUnavailable, SnapshotRef
from lab.sandbox.factory import open_sandbox
from lab.sandbox.spec import SandboxSpec

__all__ = ["ExecResult", "Sandbox", "SandboxError", "SandboxSpec", "SandboxUnavailable", "SnapshotRef",
           "open_sandbox"]
