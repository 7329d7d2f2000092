"""What a task asks of its sandbox: image, backend, isolation and limits (hardened by default)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MiB = 1 << 20


def parse_size(size: str) -> int:
    """Bytes in a size such as ``"4g"``, ``"512m"`` or ``"1073741824"`` (Docker's units, powers of 1024).

    Raises:
        ValueError: Not a positive size.
    """
    units = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    text = str(size).strip().lower()
    num, unit = text.rstrip("kmgtb"), text[len(text.rstrip("kmgtb")):]
    try:
        value = int(float(num) * units[unit])
    except (KeyError, ValueError):
        raise ValueError(f"not a size: {size!r} (use e.g. '4g' or '512m')") from None
    if value <= 0:
        raise ValueError(f"size must be positive, got {size!r}")
    return value


class SandboxSpec(BaseModel):
    """How to open a sandbox. The defaults are the safe ones; a task overrides what it needs.

    Attributes:
        image: Image to run (Docker; a ``sandboxes/<name>`` build is ``expertlab/<name>``).
        backend: ``docker`` (containers), ``local`` (a private directory, bubblewrap when installed), or another
            entry of :data:`lab.sandbox.factory.SANDBOX_BACKENDS`.
        network: Give the sandbox a network (off by default).
        user: User commands run as; ``None``: the image's user, or uid 1000 when that is root.
        workdir: Writable working directory (the current directory of every command).
        cpus: CPU limit (Docker).
        memory: Memory limit, e.g. ``"1g"`` (Docker; no swap on top).
        pids_limit: Most processes at once (Docker).
        gpus: ``None`` (no GPU), ``"all"`` or a number of GPUs (Docker, through device requests).
        read_only_root: Mount the root filesystem read-only (the workdir and ``/tmp`` stay writable).
        tmp_size: Size of the ``/tmp`` tmpfs (Docker).
        work_size: Size of the workdir's own filesystem, e.g. ``"4g"`` (Docker; writes past it fail with "No
            space left on device"; needs root on the Docker host). ``None``: an ordinary volume, no limit.
        archive_cap: Largest archive (bytes of file content) a snapshot or ``copy_out`` moves out of the
            sandbox (Docker); over it they fail with a clear error.
        output_cap: Bytes kept per output stream of one command; the rest is dropped and marked truncated.
        read_file_cap: Largest file ``read_file`` returns.
        env: Environment variables for every command.
        labels: Extra labels on the container (Docker).
        cap_add: Linux capabilities commands run as root get back after dropping all (Docker), e.g.
            ``["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID"]`` for a root user that installs packages.
        bwrap: Local backend only: ``None`` uses bubblewrap when installed, ``False`` never, ``True`` requires it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str = "expertlab/base"
    backend: str = "docker"
    network: bool = False
    user: str | None = None
    workdir: str = "/work"
    cpus: float = Field(default=1.0, gt=0)
    memory: str = "1g"
    pids_limit: int = Field(default=256, gt=0)
    gpus: Literal["all"] | int | None = None
    read_only_root: bool = True
    tmp_size: str = "512m"
    work_size: str | None = "4g"
    archive_cap: int = Field(default=1 << 30, gt=0)
    output_cap: int = Field(default=10 * MiB, gt=0)
    read_file_cap: int = Field(default=64 * MiB, gt=0)
    env: dict[str, str] = Field(default_factory=dict)
    labels: dict[str, str] = Field(default_factory=dict)
    cap_add: tuple[str, ...] = ()
    bwrap: bool | None = None

    @field_validator("workdir")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"workdir must be an absolute path, got {v!r}")
        return v.rstrip("/") or "/"

    @field_validator("work_size")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is not None:
            parse_size(v)
        return v

    @field_validator("gpus")
    @classmethod
    def _positive(cls, v: object) -> object:
        if isinstance(v, int) and v <= 0:
            raise ValueError(f"gpus must be 'all' or a positive count, got {v}")
        return v
