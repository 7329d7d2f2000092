"""The sandbox interface every backend implements (Docker, local)."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from lab.errors import LabError
from lab.sandbox.spec import SandboxSpec


class SandboxError(LabError):
    """A sandbox operation failed for a reason the caller should see."""


class SandboxUnavailable(SandboxError):
    """The sandbox died (OOM-killed, killed from outside, engine gone); the run must fail."""


@dataclass(slots=True)
class ExecResult:
    """Outcome of one command.

    Attributes:
        exit_code: Process exit status (-1 when killed for a timeout).
        stdout: Standard output as bytes decoded with ``errors="replace"`` (see ``stdout_bytes``).
        stderr: Standard error, decoded the same way.
        duration: Seconds the command ran.
        timed_out: Killed because it ran past its timeout.
        truncated: Output was cut at the output cap.
        stdout_bytes: Raw standard output.
        stderr_bytes: Raw standard error.
    """

    exit_code: int
    stdout: str
    stderr: str
    duration: float
    timed_out: bool = False
    truncated: bool = False
    stdout_bytes: bytes = b""
    stderr_bytes: bytes = b""

    @property
    def ok(self) -> bool:
        """The command exited 0 within its timeout."""
        return self.exit_code == 0 and not self.timed_out


@dataclass(frozen=True, slots=True)
class SnapshotRef:
    """A saved state of a sandbox (a committed image for Docker, a directory copy for local)."""

    backend: str
    ref: str


@runtime_checkable
class Sandbox(Protocol):
    """Where agents and humans run commands. Use as a context manager; ``close`` is idempotent.

    Attributes:
        workdir: The working directory of every command (relative paths are under it).
        spec: What the sandbox was opened with.
        id: Names the sandbox in its trace events (``lab.sandbox.id``) and its resources.
        backend: The backend's name in :data:`~lab.sandbox.factory.SANDBOX_BACKENDS` (``lab.sandbox.backend``).
    """

    workdir: str
    spec: SandboxSpec
    id: str
    backend: str

    @property
    def closed(self) -> bool:
        """``close`` ran."""
        ...

    def exec(self, cmd: str | list[str], *, input: bytes | str | None = None, cwd: str | None = None,
             env: dict[str, str] | None = None, user: str | None = None,
             timeout: float | None = None) -> ExecResult:
        """Run ``cmd`` (a string goes to ``sh -c``).

        Raises:
            SandboxUnavailable: The sandbox is dead.
        """
        ...

    def exec_stream(self, cmd: str | list[str], *, cwd: str | None = None, env: dict[str, str] | None = None,
                    timeout: float | None = None) -> Generator[tuple[str, bytes], None, None]:
        """Run ``cmd`` and yield ``("stdout"|"stderr", chunk)`` as output arrives, then
        ``("exit", b"<code>")``; closing the generator early kills the command."""
        ...

    def read_file(self, path: str) -> bytes:
        """Read a file. Raises FileNotFoundError, PermissionError, SandboxError (too large)."""
        ...

    def write_file(self, path: str, data: bytes | str) -> None:
        """Write a file, creating parent directories."""
        ...

    def copy_in(self, local_dir: str | Path, dest: str) -> None:
        """Copy a local directory's contents into ``dest``."""
        ...

    def copy_out(self, src: str, local_dir: str | Path) -> None:
        """Copy ``src`` (file or directory) out into ``local_dir``."""
        ...

    def snapshot(self) -> SnapshotRef:
        """Save the sandbox's state."""
        ...

    def restore(self, ref: SnapshotRef) -> None:
        """Return to a saved state (the sandbox keeps working afterwards)."""
        ...

    def close(self) -> None:
        """Remove the sandbox and everything it created."""
        ...

    def __enter__(self) -> Sandbox: ...

    def __exit__(self, *exc: object) -> None: ...
