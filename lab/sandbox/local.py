"""Local backend for machines without Docker: a private directory, isolated by bubblewrap when it is installed.

With ``bwrap`` every command runs in new user, mount, PID, IPC, UTS and cgroup namespaces (and network, unless
``spec.network``), with every capability dropped, no new privileges, a seccomp filter that refuses mounts,
namespaces, ptrace, kernel modules, BPF, keyrings and the like (where libseccomp is installed), as ``agent``
(uid 1000) unless ``spec.user`` or ``user`` says otherwise. It sees the host's files read-only except its own
workdir (at ``spec.workdir``) and ``/tmp``; ``/dev`` and ``/proc`` are its own; ``/run`` (the Docker socket), ``/home``,
``/root`` and the harness's directories (:func:`_hidden`) are empty; its ``/etc/passwd`` names ``agent``. When
this process is root, each sandbox also runs as a host uid of its own that no account has, so root-only host
files stay unreadable and what it creates is not root's, under a process limit (``spec.pids_limit``); every
process gets a data-memory limit (``spec.memory``). Timeouts kill every process a command started. The harness's
own file operations never follow a link out of the sandbox (:mod:`lab.sandbox.beneath`). Without bubblewrap,
commands are plain subprocesses of this process with NOTHING isolated, and a loud warning says so once.
"""

from __future__ import annotations

import errno
import json
import os
import pwd
import queue
import secrets
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

from lab.sandbox import beneath, exec_server
from lab.sandbox.base import ExecResult, SandboxError, SnapshotRef
from lab.sandbox.common import BaseSandbox, make_result
from lab.sandbox.factory import SANDBOX_BACKENDS
from lab.sandbox.gc import OWNER_FILE, owner_labels
from lab.sandbox.spec import SandboxSpec
from lab.traces.recorder import RunRecorder

_warned = threading.Event()
_warned_root = threading.Event()

AGENT_USER, AGENT_UID = "agent", 1000
"""The sandbox's default user inside (as in the Docker images)."""
HOST_UID_BASE, HOST_UID_SPAN = 1_500_000_000, 1 << 24
"""When the harness is root, each sandbox runs as a random host uid in this range (no account has one)."""

DENIED_SYSCALLS = (
    "mount", "umount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "unshare", "setns", "ptrace", "process_vm_readv", "process_vm_writev",
    "kcmp", "pidfd_getfd", "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd", "open_by_handle_at",
    "name_to_handle_at", "acct", "quotactl", "swapon", "swapoff", "reboot", "syslog", "settimeofday",
    "clock_settime", "clock_adjtime", "adjtimex", "iopl", "ioperm", "vhangup", "lookup_dcookie", "uselib",
    "nfsservctl", "fanotify_init", "io_uring_setup", "io_uring_enter", "io_uring_register",
)
"""Refused (EPERM) inside a bubblewrap sandbox, as is ``clone`` with a namespace flag and ``TIOCSTI``."""
_CLONE_NEW = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000, 0x00000080)
_TIOCSTI = 0x5412

_NO_WORKDIR_UNDER = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run",
                     "/sbin", "/sys", "/tmp", "/usr", "/var")
_SYSTEM = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run", "/sbin", "/sys",
           "/tmp", "/usr")
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_HIDEABLE = ("/home", "/root", "/srv", "/mnt", "/media", "/opt")


class UnisolatedWarning(UserWarning):
    """Local sandbox commands run without any isolation (no bubblewrap)."""


def local_root() -> Path:
    """Where local sandboxes keep their private directories (``$LAB_SANDBOX_DIR`` overrides)."""
    env = os.environ.get("LAB_SANDBOX_DIR")
    if env:
        return Path(env)
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache_home / "expertlab" / "sandboxes"


def _runs(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@cache
def bwrap_works() -> bool:
    """Whether ``bwrap`` is installed and can create namespaces here."""
    return bool(shutil.which("bwrap")) and _runs(
        ["bwrap", "--ro-bind", "/", "/", "--unshare-user", "--unshare-net", "--unshare-pid", "--proc", "/proc",
         "--dev", "/dev", "--cap-drop", "ALL", "true"])


@cache
def _own_uid_works() -> bool:
    """Whether this (root) process can start bubblewrap as an unprivileged host uid (user namespaces allowed)."""
    return bool(shutil.which("setpriv")) and _runs(
        ["setpriv", f"--reuid={HOST_UID_BASE}", f"--regid={HOST_UID_BASE}", "--clear-groups", "--", "bwrap",
         "--ro-bind", "/", "/", "--unshare-user", "--uid", str(AGENT_UID), "--gid", str(AGENT_UID),
         "--unshare-pid", "--proc", "/proc", "--dev", "/dev", "--cap-drop", "ALL", "true"])


@cache
def _bwrap_has(option: str) -> bool:
    try:
        return option in subprocess.run(["bwrap", "--help"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False


@cache
def _pid_namespace() -> tuple[str, ...]:
    """Without bubblewrap: how to run a command in a PID namespace of its own, so a timeout kills every process it
    started (``setsid`` ones too); empty where unshare cannot (neither root nor user namespaces)."""
    argv = ["unshare", "--pid", "--fork", "--kill-child"]
    if os.geteuid() != 0:
        argv[1:1] = ["--user", "--map-current-user"]
    return tuple(argv) if shutil.which("unshare") and _runs([*argv, "true"]) else ()


@cache
def seccomp_program() -> bytes | None:
    """The compiled seccomp filter (BPF) given to bubblewrap, or None where libseccomp is not installed."""
    try:
        import pyseccomp as sc
    except (ImportError, OSError, RuntimeError):
        return None
    f = sc.SyscallFilter(sc.ALLOW)
    rules: list[tuple[int, str, tuple[object, ...]]] = [(errno.EPERM, name, ()) for name in DENIED_SYSCALLS]
    rules.append((errno.ENOSYS, "clone3", ()))  # its flags cannot be inspected: libc falls back to clone
    rules += [(errno.EPERM, "clone", (sc.Arg(0, sc.MASKED_EQ, flag, flag),)) for flag in _CLONE_NEW]
    rules.append((errno.EPERM, "ioctl", (sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, _TIOCSTI),)))
    for code, name, args in rules:
        try:
            f.add_rule(sc.ERRNO(code), name, *args)
        except (OSError, ValueError, RuntimeError):  # not a syscall of this architecture or libseccomp
            pass
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        return out.read()


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _workdir_mounts(inside: str) -> list[str]:
    """The bwrap arguments that make room for the workdir at ``inside``.

    Raises:
        SandboxError: ``inside`` would cover host system directories.
    """
    if inside == "/" or any(_within(inside, d) for d in _NO_WORKDIR_UNDER):
        raise SandboxError(f"the local sandbox cannot place its workdir at {inside}: that would hide or sit inside "
                           "host system directories (use e.g. /work or /home/agent)")
    if os.path.lexists(inside) and not os.path.isdir(inside):
        raise SandboxError(f"the local sandbox cannot place its workdir at {inside}: it is a file on this host")
    if os.path.isdir(inside):
        return []  # mounted over the host's directory, which it hides
    anc = os.path.dirname(inside)
    while not os.path.isdir(anc):
        anc = os.path.dirname(anc)
    if anc == "/":
        return []  # created in the sandbox's own root
    if any(_within(anc, d) for d in _HIDEABLE):
        return ["--tmpfs", anc]  # the host's files there are hidden, the workdir is made inside
    raise SandboxError(f"the local sandbox cannot create its workdir {inside} under the host's read-only {anc}")


def _hidden() -> list[str]:
    """Host directories a sandbox must not read (they hold the operator's files, tasks' answers, trace stores):
    ``/home``, ``/root``, and this process's home, working directory, install directory and sandbox root."""
    found: list[str] = []
    for d in ("/home", "/root", Path.home(), os.getcwd(), Path(__file__).resolve().parents[2], local_root()):
        real = os.path.realpath(d)
        if real != "/" and os.path.isdir(real) and not any(_within(real, s) for s in _SYSTEM):
            found.append(real)
    outer = [d for d in sorted(set(found)) if not any(d != o and _within(d, o) for o in found)]
    return [arg for d in outer for arg in ("--tmpfs", d)]


def _root_binds() -> list[str]:
    """The host's top-level entries, read-only, without ``/proc``, ``/dev``, ``/tmp`` and ``/run``, and with
    the :func:`_hidden` directories empty."""
    args: list[str] = []
    for name in sorted(os.listdir("/")):
        path = "/" + name
        if name in ("proc", "dev", "tmp", "run"):
            continue
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        else:
            args += ["--ro-bind", path, path]
    args += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/run", *_hidden()]
    if os.path.isdir("/var/run") and not os.path.islink("/var/run"):
        args += ["--tmpfs", "/var/run"]
    return args


def _user_db(kind: str, name: str, uid: int, home: str) -> bytes:
    """The host's ``/etc/passwd`` or ``/etc/group`` with the sandbox's user (or group) as ``uid``."""
    try:
        lines = Path(f"/etc/{kind}").read_text().splitlines()
    except OSError:
        lines = ["root:x:0:0:root:/root:/bin/sh" if kind == "passwd" else "root:x:0:"]
    keep = [ln for ln in lines if ln.split(":")[:1] != [name] and ln.split(":")[2:3] != [str(uid)]]
    extra = f"{name}:x:{uid}:{uid}:{name}:{home}:/bin/sh" if kind == "passwd" else f"{name}:x:{uid}:"
    return ("\n".join([*keep, extra]) + "\n").encode()


@SANDBOX_BACKENDS.register("local")
class LocalSandbox(BaseSandbox):
    """A sandbox in a private local directory. Open it with :func:`lab.sandbox.open_sandbox`.

    With bubblewrap its ``workdir`` is ``spec.workdir`` inside the sandbox and ``host_workdir`` on this machine;
    without, both are the same real directory.
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
        mounts = _workdir_mounts(spec.workdir) if self.isolated else []
        base = local_root()
        base.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.id}-", dir=base))  # 0700: the harness's alone
        (self.root / OWNER_FILE).write_text(json.dumps(owner_labels(self.id, self.run_id)))
        self.host_workdir = (self.root / "work").resolve()
        host_tmp = self.root / "tmp"
        for d in (self.host_workdir, host_tmp, self.root / "snapshots"):
            d.mkdir(mode=0o700)  # no one else on this host reads the sandbox's files
        os.chmod(host_tmp, 0o1777)
        self._owner: beneath.Owner = None
        self._groups: dict[int, int] = {}
        self._groups_lock = threading.Lock()
        self._snapshots = 0
        if self.isolated:
            if os.geteuid() == 0:
                if _own_uid_works():
                    uid = HOST_UID_BASE + secrets.randbelow(HOST_UID_SPAN)
                    self._owner = (uid, uid)
                    for d in (self.host_workdir, host_tmp):
                        os.chown(d, uid, uid)
                elif not _warned_root.is_set():
                    _warned_root.set()
                    warnings.warn("local sandbox: bubblewrap cannot start as an unprivileged uid here (user "
                                  "namespaces restricted), so sandboxed commands are root on the host, without "
                                  "capabilities", UserWarning, stacklevel=3)
            self.workdir = spec.workdir
            (self.root / "passwd").write_bytes(_user_db("passwd", AGENT_USER, AGENT_UID, self.workdir))
            (self.root / "group").write_bytes(_user_db("group", AGENT_USER, AGENT_UID, self.workdir))
            bpf = seccomp_program()
            if bpf is not None:
                (self.root / "seccomp.bpf").write_bytes(bpf)
            src = Path("/tmp") if self._owner is not None else self.root
            if self._owner is not None:
                os.chmod(self.root, 0o711)
            self._mounts = [*_root_binds(), "--bind", str(src / "tmp"), "/tmp", *mounts,
                            "--bind", str(src / "work"), self.workdir,
                            "--ro-bind-data", "6", "/etc/passwd", "--ro-bind-data", "7", "/etc/group",
                            *(["--seccomp", "5"] if bpf is not None else [])]
            areas = [(self.workdir, self.host_workdir), ("/tmp", host_tmp)]
        else:
            self.workdir = str(self.host_workdir)
            areas = [(self.workdir, self.host_workdir), ("/tmp", Path("/tmp"))]
        self._areas = sorted(((inside, os.open(host, beneath.DIR)) for inside, host in areas),
                             key=lambda a: -len(a[0]))

    # -- paths ----------------------------------------------------------------------------------

    def _inside(self, path: str) -> str:
        return os.path.normpath(path if path.startswith("/") else os.path.join(self.workdir, path))

    def _locate(self, path: str) -> tuple[int, str] | None:
        """The directory descriptor and relative path of ``path`` when it is in the workdir or ``/tmp``."""
        p = self._inside(path)
        for inside, fd in self._areas:
            if _within(p, inside):
                return fd, os.path.relpath(p, inside)
        return None

    def _writable(self, path: str) -> tuple[int, str]:
        loc = self._locate(path)
        if loc is None:
            raise PermissionError(errno.EACCES, f"outside the sandbox's writable directories ({self.workdir} and "
                                  "/tmp); the rest is read-only", path)
        return loc

    # -- exec -----------------------------------------------------------------------------------

    def _ids(self, user: str | None) -> tuple[int, int]:
        if user is None or user in (AGENT_USER, str(AGENT_UID)):
            return AGENT_UID, AGENT_UID
        if user.isdigit():
            return int(user), int(user)
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            raise SandboxError(f"unknown user {user!r} for the local sandbox") from None
        return pw.pw_uid, pw.pw_gid

    def _argv(self, argv: list[str], cwd: str, user: str | None) -> list[str]:
        if not self.isolated:
            if user is not None and user not in (pwd.getpwuid(os.getuid()).pw_name, str(os.getuid())):
                raise SandboxError(f"the local sandbox without bubblewrap cannot run commands as {user!r}")
            if not _pid_namespace():
                return argv
            # pid 1 of the namespace is this shell, so the command itself still gets signals ($$ works)
            return [*_pid_namespace(), "sh", "-c", 'exec 3<&0; "$@" <&3 3<&- & wait $!', "sh", *argv]
        uid, gid = self._ids(user or self.spec.user)
        wrap = ["bwrap", "--unshare-user", "--uid", str(uid), "--gid", str(gid),
                *(["--disable-userns"] if _bwrap_has("--disable-userns") else []),
                "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                *([] if self.spec.network else ["--unshare-net"]), "--hostname", "sandbox",
                "--die-with-parent", "--new-session", "--cap-drop", "ALL", *self._mounts, "--chdir", cwd,
                # through sh, so a missing command exits 127 (bwrap itself would exit 1)
                "--", "sh", "-c", 'exec "$@"', "sh", *argv]
        from docker.utils import parse_bytes

        limits = [f"--data={parse_bytes(self.spec.memory)}", "--core=0"]
        cmd = []
        if self._owner is not None:
            limits.append(f"--nproc={self.spec.pids_limit}")
            cmd = ["setpriv", f"--reuid={self._owner[0]}", f"--regid={self._owner[1]}", "--clear-groups", "--"]
        if shutil.which("prlimit"):
            cmd = ["prlimit", *limits, "--", *cmd]
        # a shell (still the harness's user) opens what bwrap reads from descriptors; as root it first makes /tmp
        # this sandbox's directory in a private mount namespace, since bwrap resolves what it mounts as the
        # sandbox's uid, which cannot traverse e.g. /root
        # (descriptors first: the sandbox's directory may itself be under /tmp)
        mount = 'mount --bind "$1" /tmp && ' if self._owner is not None else ""
        script = f'exec 6<"$1/passwd" 7<"$1/group" 5<"$2" && {mount}shift 2 && exec "$@"'
        bpf = self.root / "seccomp.bpf"
        cmd = ["sh", "-c", script, "sh", str(self.root), str(bpf) if bpf.exists() else "/dev/null", *cmd, *wrap]
        return cmd if self._owner is None else ["unshare", "--mount", "--propagation", "private", "--", *cmd]

    def _env(self, env: dict[str, str]) -> dict[str, str]:
        path = os.environ.get("PATH", _PATH) if not self.isolated else _PATH  # the host's may name unreadable dirs
        return {"PATH": path, "HOME": self.workdir,
                "TMPDIR": "/tmp" if self.isolated else str(self.root / "tmp"), "LANG": "C.UTF-8", **env}

    def _prepare(self, argv: list[str], cwd: str | None, env: dict[str, str],
                 user: str | None) -> tuple[list[str], str | None, dict[str, str]]:
        """The full command line, the host directory to run in (unisolated only) and the environment.

        Raises:
            FileNotFoundError: ``cwd`` does not exist in the sandbox.
        """
        inside = self._inside(cwd or ".")
        loc = self._locate(inside)
        try:
            if loc is not None:
                os.close(beneath.open_dir(*loc))
            elif not os.path.isdir(inside):
                raise FileNotFoundError
        except OSError:
            raise FileNotFoundError(errno.ENOENT, "working directory does not exist in the sandbox", cwd) from None
        return self._argv(argv, inside, user), (None if self.isolated else inside), self._env(env)

    def _track(self, key: int) -> Callable[[int], None]:
        """Records the process group of command ``key`` once it started (for ``close`` and early stops)."""
        def on_start(pid: int) -> None:
            with self._groups_lock:
                self._groups[key] = pid
        return on_start

    def _untrack(self, key: int) -> None:
        with self._groups_lock:
            self._groups.pop(key, None)

    def _run(self, argv: list[str], input: bytes, cwd: str | None, env: dict[str, str], user: str | None,
             timeout: float | None, cap: int) -> ExecResult:
        full, run_cwd, run_env = self._prepare(argv, cwd, env, user)
        out, err = bytearray(), bytearray()
        key = id(out)
        try:
            res = exec_server.run_command(full, lambda s, c: (out if s == "stdout" else err).extend(c),
                                          cwd=run_cwd, env=run_env, stdin=input, timeout=timeout,
                                          cap=cap, on_start=self._track(key))
        finally:
            self._untrack(key)
        return make_result(res, bytes(out), bytes(err))

    def _exec(self, argv: list[str], input: bytes, cwd: str | None, env: dict[str, str], user: str | None,
              timeout: float | None) -> ExecResult:
        return self._run(argv, input, cwd, env, user, timeout, self.spec.output_cap)

    def _exec_stream(self, argv: list[str], cwd: str | None, env: dict[str, str],
                     timeout: float | None) -> Iterator[tuple[str, bytes]]:
        full, run_cwd, run_env = self._prepare(argv, cwd, env, None)
        q: queue.SimpleQueue[tuple[str, bytes | BaseException]] = queue.SimpleQueue()
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
                if isinstance(payload, BaseException):  # kind "error"
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

    _READ = ('[ -d "$1" ] && exit 21; [ -e "$1" ] || exit 2; [ -f "$1" ] || exit 22; [ -r "$1" ] || exit 13; '
             'exec head -c "$2" -- "$1"')

    def _read_through_sandbox(self, path: str) -> bytes:
        """Read a file outside the workdir and ``/tmp`` as the sandbox's user sees it (never with our rights)."""
        cap = self.spec.read_file_cap
        r = self._run(["sh", "-c", self._READ, "sh", self._inside(path), str(cap + 1)], b"", "/", {}, None, 60,
                      cap + 1)
        errors = {2: FileNotFoundError, 13: PermissionError, 21: IsADirectoryError, 22: PermissionError}
        if r.exit_code in errors:
            code = {2: errno.ENOENT, 13: errno.EACCES, 21: errno.EISDIR, 22: errno.EACCES}[r.exit_code]
            raise errors[r.exit_code](code, "not a regular file" if r.exit_code == 22 else os.strerror(code), path)
        if not r.ok:
            raise SandboxError(f"{path}: could not be read ({r.stderr.strip() or f'exit {r.exit_code}'})")
        if len(r.stdout_bytes) > cap:
            raise SandboxError(f"{path}: file is over the read limit of {cap} bytes")
        return r.stdout_bytes

    def _read_file(self, path: str) -> bytes:
        loc = self._locate(path)
        try:
            if loc is not None:
                return beneath.read_file(*loc, self.spec.read_file_cap)
            if self.isolated:
                return self._read_through_sandbox(path)
            return beneath.read_file(None, self._inside(path), self.spec.read_file_cap, beneath=False)
        except OSError as e:
            if e.errno == errno.EFBIG:
                raise SandboxError(f"{path}: {e.strerror}") from None
            raise

    def _write_file(self, path: str, data: bytes) -> None:
        beneath.write_file(*self._writable(path), data, self._owner)

    def _copy_in(self, local_dir: Path, dest: str) -> None:
        src = os.open(local_dir, beneath.DIR)
        try:
            dst = beneath.open_dir(*self._writable(dest), create=True, owner=self._owner)
            try:
                beneath.copy_tree(src, dst, owner=self._owner, where=str(local_dir))
            finally:
                os.close(dst)
        finally:
            os.close(src)

    def _copy_out(self, src: str, local_dir: Path) -> None:
        loc = self._locate(src)
        if loc is None:
            raise PermissionError(errno.EACCES, f"copy_out reaches only the sandbox's {self.workdir} and /tmp", src)
        name = os.path.basename(self._inside(src)) or "root"
        sfd = beneath.open_beneath(*loc, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        stage = tempfile.mkdtemp(prefix=".copy_out-", dir=local_dir)
        try:
            stage_fd = os.open(stage, beneath.DIR)
            try:
                beneath.copy_out(sfd, name, stage_fd, where=src)
            finally:
                os.close(stage_fd)
            beneath.check_links_inside(os.path.join(stage, name))
            beneath.move_into(stage, local_dir)
        finally:
            os.close(sfd)
            shutil.rmtree(stage, ignore_errors=True)

    # -- snapshots ------------------------------------------------------------------------------

    def _workdir_fd(self) -> int:
        return next(fd for inside, fd in self._areas if inside == self.workdir)

    def _snapshot(self) -> SnapshotRef:
        self._snapshots += 1
        dest = self.root / "snapshots" / str(self._snapshots)
        dest.mkdir(mode=0o700)
        dfd = os.open(dest, beneath.DIR)
        try:
            beneath.copy_tree(self._workdir_fd(), dfd, special="skip")
        finally:
            os.close(dfd)
        return SnapshotRef("local", str(dest))

    def _restore(self, ref: SnapshotRef) -> None:
        try:
            sfd = os.open(ref.ref, beneath.DIR)
        except OSError:
            raise SandboxError(f"snapshot {ref.ref} no longer exists (its sandbox was closed)") from None
        try:
            wfd = self._workdir_fd()
            for name in os.listdir(wfd):
                beneath.remove(name, wfd)
            beneath.copy_tree(sfd, wfd, owner=self._owner, special="skip")
        finally:
            os.close(sfd)

    def _close(self) -> None:
        with self._groups_lock:
            groups = list(self._groups.values())
        for pgid in groups:
            exec_server.kill_group(pgid)
        for _, fd in self._areas:
            os.close(fd)
        shutil.rmtree(self.root, ignore_errors=True)
