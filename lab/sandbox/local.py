"""Local backend for machines without Docker: a private directory, isolated by bubblewrap when it is installed.

With ``bwrap``: no network, the host's filesystem read-only, a private ``/tmp`` (a directory of the sandbox),
a private PID namespace; only the workdir and ``/tmp`` are writable. Without it, commands are plain
subprocesses of this process with NOTHING isolated, and a loud warning says so once. CPU, memory and
process limits are not enforced locally. Commands get a minimal environment (never this process's secrets).
"""

from __future__ import annotations

import json
import os
import pwd
import queue
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from lab.sandbox import exec_server
from lab.sandbox.base import ExecResult, SandboxError, SnapshotRef
from lab.sandbox.common import BaseSandbox, make_result
from lab.sandbox.factory import SANDBOX_BACKENDS
from lab.sandbox.gc import OWNER_FILE, owner_labels
from lab.sandbox.spec import SandboxSpec
from lab.traces.recorder import RunRecorder

_warned = threading.Event()


class UnisolatedWarning(UserWarning):
    """Local sandbox commands run without any isolation (no bubblewrap)."""


def local_root() -> Path:
    """Where local sandboxes keep their private directories (``$LAB_SANDBOX_DIR`` overrides)."""
    env = os.environ.get("LAB_SANDBOX_DIR")
    if env:
        return Path(env)
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache_home / "expertlab" / "sandboxes"


@cache
def bwrap_works() -> bool:
    """Whether ``bwrap`` is installed and can create namespaces here."""
    exe = shutil.which("bwrap")
    if not exe:
        return False
    try:
        return subprocess.run([exe, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "--proc", "/proc",
                               "--dev", "/dev", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


@SANDBOX_BACKENDS.register("local")
class LocalSandbox(BaseSandbox):
    """A sandbox in a private local directory. Open it with :func:`lab.sandbox.open_sandbox`.

    Its ``workdir`` is a real directory of this machine (``spec.workdir`` does not apply).
    """

    backend = "local"

    def __init__(self, spec: SandboxSpec, *, recorder: RunRecorder | None = None, run_id: str | None = None) -> None:
        super().__init__(spec, recorder=recorder, run_id=run_id)
        if spec.bwrap and not bwrap_works():
            raise SandboxError("SandboxSpec(bwrap=True) but bubblewrap is not installed or cannot create "
                               "namespaces here (apt-get install bubblewrap)")
        self.isolated = bwrap_works() if spec.bwrap is None else spec.bwrap
        if not self.isolated and not _warned.is_set():
            _warned.set()
            warnings.warn("local sandbox WITHOUT isolation: bubblewrap is not available, so commands run as "
                          f"{pwd.getpwuid(os.getuid()).pw_name} with full access to this machine and its network",
                          UnisolatedWarning, stacklevel=3)
        base = local_root()
        base.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.id}-", dir=base))
        (self.root / OWNER_FILE).write_text(json.dumps(owner_labels(self.id, self.run_id)))
        self.workdir = str((self.root / "work").resolve())
        self.tmp = str((self.root / "tmp").resolve())
        for d in (self.workdir, self.tmp, self.root / "snapshots"):
            os.makedirs(d, exist_ok=True)
        os.chmod(self.tmp, 0o1777)
        self._groups: dict[int, int] = {}
        self._groups_lock = threading.Lock()
        self._snapshots = 0

    # -- paths ----------------------------------------------------------------------------------

    def _host_path(self, path: str, *, write: bool) -> str:
        """Where ``path`` (as the sandbox sees it) lives on this machine; writes must stay inside the sandbox."""
        p = path if path.startswith("/") else os.path.join(self.workdir, path)
        p = os.path.normpath(p)
        if self.isolated and _within(p, "/tmp") and not _within(p, self.workdir):
            p = os.path.join(self.tmp, os.path.relpath(p, "/tmp"))
        real = os.path.realpath(p)
        writable = (self.workdir, self.tmp if self.isolated else "/tmp")
        if write and not any(_within(real, w) for w in writable):
            raise PermissionError(f"{path}: outside the sandbox's writable directories "
                                  f"({self.workdir}{' and /tmp' if self.isolated else ''}); the rest is read-only")
        return p

    # -- exec -----------------------------------------------------------------------------------

    def _argv(self, argv: list[str], cwd: str, user: str | None) -> list[str]:
        if not self.isolated:
            if user is not None and user not in (pwd.getpwuid(os.getuid()).pw_name, str(os.getuid())):
                raise SandboxError(f"the local sandbox without bubblewrap cannot run commands as {user!r}")
            return argv
        wrap = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--bind", self.tmp, "/tmp",
                "--bind", self.workdir, self.workdir, "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                "--hostname", "sandbox", "--die-with-parent", "--new-session", "--chdir", cwd]
        if not self.spec.network:
            wrap.append("--unshare-net")
        if user is not None:
            try:
                pw = pwd.getpwnam(user) if not user.isdigit() else pwd.getpwuid(int(user))
            except KeyError:
                raise SandboxError(f"unknown user {user!r} for the local sandbox") from None
            wrap += ["--unshare-user", "--uid", str(pw.pw_uid), "--gid", str(pw.pw_gid)]
        # through sh, so a missing command exits 127 (bwrap itself would exit 1)
        return [*wrap, "--", "sh", "-c", 'exec "$@"', "sh", *argv]

    def _env(self, env: dict[str, str]) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": self.workdir,
                "TMPDIR": "/tmp" if self.isolated else self.tmp, "LANG": "C.UTF-8", **env}

    def _prepare(self, argv: list[str], cwd: str | None, env: dict[str, str], user: str | None):
        inside = os.path.normpath(cwd if cwd and cwd.startswith("/") else os.path.join(self.workdir, cwd or "."))
        if not os.path.isdir(self._host_path(inside, write=False)):
            raise FileNotFoundError(f"working directory {cwd} does not exist in the sandbox")
        return self._argv(argv, inside, user), (None if self.isolated else inside), self._env(env)

    def _track(self, key: int):
        def on_start(pid: int) -> None:
            with self._groups_lock:
                self._groups[key] = pid
        return on_start

    def _untrack(self, key: int) -> None:
        with self._groups_lock:
            self._groups.pop(key, None)

    def _exec(self, argv, input, cwd, env, user, timeout) -> ExecResult:
        full, run_cwd, run_env = self._prepare(argv, cwd, env, user)
        out, err = bytearray(), bytearray()
        key = id(out)
        try:
            res = exec_server.run_command(full, lambda s, c: (out if s == "stdout" else err).extend(c),
                                          cwd=run_cwd, env=run_env, stdin=input, timeout=timeout,
                                          cap=self.spec.output_cap, on_start=self._track(key))
        finally:
            self._untrack(key)
        return make_result(res, bytes(out), bytes(err))

    def _exec_stream(self, argv, cwd, env, timeout) -> Iterator[tuple[str, bytes]]:
        full, run_cwd, run_env = self._prepare(argv, cwd, env, None)
        q: queue.SimpleQueue = queue.SimpleQueue()
        key = id(q)

        def work() -> None:
            try:
                res = exec_server.run_command(full, lambda s, c: q.put((s, c)), cwd=run_cwd, env=run_env,
                                              timeout=timeout, cap=self.spec.output_cap, on_start=self._track(key))
                q.put(("exit", str(res["exit_code"]).encode()))
            except BaseException as e:  # noqa: BLE001 - handed to the consumer
                q.put(("error", e))
            finally:
                self._untrack(key)

        threading.Thread(target=work, name="lab-local-stream", daemon=True).start()
        done = False
        try:
            while True:
                kind, payload = q.get()
                if kind == "error":
                    done = True
                    raise payload
                yield kind, payload
                if kind == "exit":
                    done = True
                    return
        finally:
            if not done:
                with self._groups_lock:
                    pgid = self._groups.get(key)
                if pgid is not None:
                    exec_server.kill_group(pgid)

    # -- files ----------------------------------------------------------------------------------

    def _read_file(self, path: str) -> bytes:
        try:
            return exec_server.read_file(self._host_path(path, write=False), self.spec.read_file_cap)
        except OSError as e:
            if e.errno == exec_server.errno.EFBIG:
                raise SandboxError(f"{path}: {e.strerror}") from None
            raise

    def _write_file(self, path: str, data: bytes) -> None:
        exec_server.write_file(self._host_path(path, write=True), data)

    def _copy_in(self, local_dir: Path, dest: str) -> None:
        shutil.copytree(local_dir, self._host_path(dest, write=True), symlinks=True, dirs_exist_ok=True)

    def _copy_out(self, src: str, local_dir: Path) -> None:
        host = self._host_path(src, write=False)
        target = local_dir / os.path.basename(os.path.normpath(host))
        if os.path.isdir(host):
            shutil.copytree(host, target, symlinks=True, dirs_exist_ok=True)
        elif os.path.exists(host):
            shutil.copy2(host, target)
        else:
            raise FileNotFoundError(f"{src}: no such file or directory in the sandbox")

    # -- snapshots ------------------------------------------------------------------------------

    def _snapshot(self) -> SnapshotRef:
        self._snapshots += 1
        dest = self.root / "snapshots" / str(self._snapshots)
        shutil.copytree(self.workdir, dest, symlinks=True)
        return SnapshotRef("local", str(dest))

    def _restore(self, ref: SnapshotRef) -> None:
        src = Path(ref.ref)
        if not src.is_dir():
            raise SandboxError(f"snapshot {ref.ref} no longer exists (its sandbox was closed)")
        for child in Path(self.workdir).iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        shutil.copytree(src, self.workdir, symlinks=True, dirs_exist_ok=True)

    def _close(self) -> None:
        with self._groups_lock:
            groups = list(self._groups.values())
        for pgid in groups:
            exec_server.kill_group(pgid)
        shutil.rmtree(self.root, ignore_errors=True)
