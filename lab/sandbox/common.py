"""What every backend shares: recording each operation into the run's trace, argv handling, closing at exit."""

from __future__ import annotations

import atexit
import threading
import time
import uuid
import weakref
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Self

from lab.sandbox.base import ExecResult, SandboxError, SnapshotRef
from lab.sandbox.spec import SandboxSpec
from lab.traces.recorder import RunRecorder
from lab.traces.schema import sandbox_exec, sandbox_file

if TYPE_CHECKING:
    from lab.sandbox.exec_server import CommandResult

TRACE_CAP = 64 * 1024
"""Bytes of each output stream kept in a trace event (the rest is marked ``..._truncated``)."""

_open: weakref.WeakSet[BaseSandbox] = weakref.WeakSet()
_open_lock = threading.Lock()


def argv_of(cmd: str | list[str]) -> list[str]:
    """A command as argv: a string runs through ``sh -c``.

    Raises:
        SandboxError: The command is empty or not a string/list of strings.
    """
    if isinstance(cmd, str):
        if not cmd.strip():
            raise SandboxError("empty command")
        return ["sh", "-c", cmd]
    if not cmd or not all(isinstance(a, str) for a in cmd):
        raise SandboxError(f"command must be a non-empty string or list of strings, got {cmd!r}")
    return list(cmd)


def as_bytes(data: bytes | str | None) -> bytes:
    """Data as bytes: text is UTF-8, ``None`` is empty."""
    if data is None:
        return b""
    return data.encode() if isinstance(data, str) else bytes(data)


def make_result(res: CommandResult, out: bytes, err: bytes) -> ExecResult:
    """The :class:`ExecResult` of a finished command: how it ended, and its whole output."""
    return ExecResult(exit_code=res["exit_code"], stdout=out.decode("utf-8", "replace"),
                      stderr=err.decode("utf-8", "replace"), duration=res["duration"],
                      timed_out=res["timed_out"], truncated=res["truncated"], stdout_bytes=out, stderr_bytes=err)


def _clip(data: bytes) -> tuple[str, bool]:
    return data[:TRACE_CAP].decode("utf-8", "replace"), len(data) > TRACE_CAP


@atexit.register
def close_all() -> None:
    """Close every sandbox this process still has open (runs at normal exit and after Ctrl-C)."""
    with _open_lock:
        boxes = list(_open)
    for box in boxes:
        try:
            box.close()
        except Exception:  # noqa: BLE001 - best effort at exit; gc removes what is left
            pass


class BaseSandbox(ABC):
    """Records every operation of a backend as a trace event and makes closing safe and idempotent.

    A backend implements the underscore methods; the public ones (the :class:`~lab.sandbox.base.Sandbox`
    protocol) validate arguments, call them, and record ``sandbox_exec`` / ``sandbox_file`` events.
    """

    backend = "?"

    def __init__(self, spec: SandboxSpec, *, recorder: RunRecorder | None = None, run_id: str | None = None) -> None:
        self.spec = spec
        self.recorder = recorder
        self.run_id = run_id or (recorder.run_id if recorder is not None else None)
        self.id = uuid.uuid4().hex[:12]
        self.workdir = spec.workdir
        self._closed = False
        self._close_lock = threading.Lock()
        with _open_lock:
            _open.add(self)

    # -- what a backend implements ---------------------------------------------------------------

    @abstractmethod
    def _exec(self, argv: list[str], input: bytes, cwd: str | None, env: dict[str, str], user: str | None,
              timeout: float | None) -> ExecResult: ...

    @abstractmethod
    def _exec_stream(self, argv: list[str], cwd: str | None, env: dict[str, str],
                     timeout: float | None) -> Iterator[tuple[str, bytes]]: ...

    @abstractmethod
    def _read_file(self, path: str) -> bytes: ...

    @abstractmethod
    def _write_file(self, path: str, data: bytes) -> None: ...

    @abstractmethod
    def _copy_in(self, local_dir: Path, dest: str) -> None: ...

    @abstractmethod
    def _copy_out(self, src: str, local_dir: Path) -> None: ...

    @abstractmethod
    def _snapshot(self) -> SnapshotRef: ...

    @abstractmethod
    def _restore(self, ref: SnapshotRef) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...

    # -- the protocol -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SandboxError(f"sandbox {self.id} is closed")

    def _record_exec(self, argv: list[str], cwd: str | None, env: dict[str, str], user: str | None,
                     timeout: float | None, res: ExecResult | None, error: BaseException | None) -> None:
        if self.recorder is None:
            return
        out, out_cut = _clip(res.stdout_bytes) if res is not None else (None, None)
        err, err_cut = _clip(res.stderr_bytes) if res is not None else (None, None)
        self.recorder.emit(*sandbox_exec(
            sandbox_id=self.id, backend=self.backend, command_args=argv, cwd=cwd or self.workdir, user=user,
            env_keys=sorted(env), timeout=timeout, exit_code=res.exit_code if res is not None else None,
            sandbox_duration=res.duration if res is not None else None,
            timed_out=res.timed_out if res is not None else None, truncated=res.truncated if res is not None else None,
            stdout=out, stdout_truncated=out_cut, stderr=err, stderr_truncated=err_cut,
            error_type=type(error).__name__ if error is not None else None,
            error_message=str(error) if error is not None else None))

    def _record_file(self, op: str, path: str, started: float, error: BaseException | None = None, *,
                     size: int | None = None, local_path: str | None = None, snapshot: str | None = None) -> None:
        if self.recorder is None:
            return
        self.recorder.emit(*sandbox_file(
            sandbox_id=self.id, backend=self.backend, op=op, path=path, sandbox_duration=time.monotonic() - started,
            size=size, local_path=local_path, snapshot=snapshot,
            error_type=type(error).__name__ if error is not None else None,
            error_message=str(error) if error is not None else None))

    def exec(self, cmd: str | list[str], *, input: bytes | str | None = None, cwd: str | None = None,
             env: dict[str, str] | None = None, user: str | None = None, timeout: float | None = None) -> ExecResult:
        """Run ``cmd`` (a string goes to ``sh -c``) and wait for it.

        Args:
            cmd: Shell command line, or argv.
            input: Bytes or text fed to the command's stdin.
            cwd: Working directory (default: the sandbox's workdir).
            env: Extra environment variables.
            user: Run as this user instead of the sandbox's.
            timeout: Seconds before the command and everything it started are killed (``timed_out`` is then
                set).

        Returns:
            The exit code, stdout, stderr (each capped at ``spec.output_cap``), duration and flags.

        Raises:
            SandboxUnavailable: The sandbox is dead.
            SandboxError: The command could not be run (closed sandbox, bad arguments, unknown user).
            FileNotFoundError: ``cwd`` does not exist.
        """
        self._check_open()
        argv = argv_of(cmd)
        if timeout is not None and timeout <= 0:
            raise SandboxError(f"timeout must be positive, got {timeout}")
        full_env = {**self.spec.env, **(env or {})}
        try:
            res = self._exec(argv, as_bytes(input), cwd, full_env, user, timeout)
        except BaseException as e:
            self._record_exec(argv, cwd, full_env, user, timeout, None, e)
            raise
        self._record_exec(argv, cwd, full_env, user, timeout, res, None)
        return res

    def exec_stream(self, cmd: str | list[str], *, cwd: str | None = None, env: dict[str, str] | None = None,
                    timeout: float | None = None) -> Generator[tuple[str, bytes], None, None]:
        """Run ``cmd`` and yield ``("stdout"|"stderr", chunk)`` as output arrives, then ``("exit", b"<code>")``
        (``b"-1"`` after a timeout). Closing the generator early kills the command.

        Raises:
            SandboxUnavailable: The sandbox is dead.
        """
        self._check_open()
        argv = argv_of(cmd)
        full_env = {**self.spec.env, **(env or {})}
        started = time.monotonic()
        out, err = bytearray(), bytearray()
        code: int | None = None
        error: BaseException | None = None
        try:
            for stream, chunk in self._exec_stream(argv, cwd, full_env, timeout):
                if stream == "exit":
                    code = int(chunk)
                elif len(out if stream == "stdout" else err) < TRACE_CAP:
                    (out if stream == "stdout" else err).extend(chunk)
                yield stream, chunk
        except BaseException as e:
            error = e
            raise
        finally:
            res = None
            if code is not None:
                res = ExecResult(code, "", "", time.monotonic() - started, timed_out=code == -1,
                                 stdout_bytes=bytes(out), stderr_bytes=bytes(err))
            self._record_exec(argv, cwd, full_env, None, timeout, res,
                              error if error is not None or res is not None else GeneratorExit("closed early"))

    def read_file(self, path: str) -> bytes:
        """Read a whole file (relative paths are under the workdir).

        Raises:
            FileNotFoundError: No such file.
            PermissionError: Not readable by the sandbox's user.
            IsADirectoryError: ``path`` is a directory.
            SandboxError: The file is over ``spec.read_file_cap`` bytes.
        """
        self._check_open()
        started = time.monotonic()
        try:
            data = self._read_file(path)
        except BaseException as e:
            self._record_file("read", path, started, e)
            raise
        self._record_file("read", path, started, size=len(data))
        return data

    def write_file(self, path: str, data: bytes | str) -> None:
        """Write a file (text is UTF-8), creating parent directories.

        Raises:
            PermissionError: The location is not writable (e.g. the read-only root filesystem).
        """
        self._check_open()
        started = time.monotonic()
        raw = as_bytes(data)
        try:
            self._write_file(path, raw)
        except BaseException as e:
            self._record_file("write", path, started, e)
            raise
        self._record_file("write", path, started, size=len(raw))

    def copy_in(self, local_dir: str | Path, dest: str) -> None:
        """Copy the contents of a local directory into ``dest`` (created if missing).

        Raises:
            FileNotFoundError: ``local_dir`` is not a directory.
            PermissionError: ``dest`` is not writable.
        """
        self._check_open()
        local = Path(local_dir)
        if not local.is_dir():
            raise FileNotFoundError(f"copy_in: {local} is not a directory")
        started = time.monotonic()
        try:
            self._copy_in(local, dest)
        except BaseException as e:
            self._record_file("copy_in", dest, started, e, local_path=str(local))
            raise
        self._record_file("copy_in", dest, started, local_path=str(local))

    def copy_out(self, src: str, local_dir: str | Path) -> None:
        """Copy ``src`` (a file or directory, kept under its own name) into the local directory ``local_dir``.

        Raises:
            FileNotFoundError: ``src`` does not exist.
        """
        self._check_open()
        local = Path(local_dir)
        local.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            self._copy_out(src, local)
        except BaseException as e:
            self._record_file("copy_out", src, started, e, local_path=str(local))
            raise
        self._record_file("copy_out", src, started, local_path=str(local))

    def snapshot(self) -> SnapshotRef:
        """Save the sandbox's state (the workdir, and the root filesystem where it is writable).

        Returns:
            A reference valid until this sandbox closes.
        """
        self._check_open()
        started = time.monotonic()
        ref = self._snapshot()
        self._record_file("snapshot", self.workdir, started, snapshot=ref.ref)
        return ref

    def restore(self, ref: SnapshotRef) -> None:
        """Return to a saved state; the sandbox keeps working afterwards.

        Raises:
            SandboxError: ``ref`` is from another backend or no longer exists.
        """
        self._check_open()
        if ref.backend != self.backend:
            raise SandboxError(f"cannot restore a {ref.backend} snapshot into a {self.backend} sandbox")
        started = time.monotonic()
        self._restore(ref)
        self._record_file("restore", self.workdir, started, snapshot=ref.ref)

    def close(self) -> None:
        """Remove the sandbox and everything it created (idempotent)."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._close()
        finally:
            with _open_lock:
                _open.discard(self)

    @property
    def closed(self) -> bool:
        """``close`` ran (or is running)."""
        return self._closed

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} image={self.spec.image!r}{' closed' if self._closed else ''}>"
