"""The resident exec server that runs inside a sandbox, and the command runner it shares with the local backend.

This module is standard-library only and runs under the sandbox image's own ``python3`` (3.9 or newer): the
Docker backend starts it once per sandbox through one attached exec and then talks to it with frames on its
stdin/stdout. Each frame is ``HEADER`` (request id, kind byte, meta length, data length), then a JSON
``meta`` object, then raw ``data`` bytes. Replies never carry more than ``MAX_META`` / ``MAX_DATA`` bytes.

The server runs as root in the container holding only the capabilities it needs to switch users and to kill
(SETUID, SETGID, KILL, SETPCAP). It makes itself non-dumpable, so no process of the sandbox can open its
``/proc/<pid>/fd`` or memory, and empties the capability bounding set of everything it starts (but the
spec's own ``cap_add``). Every command and file operation runs as the requested user (the sandbox's agent
by default) in a process of its own; each command also carries a supplementary group of its own (a
*marker*) that it cannot drop, so a timeout or a kill reaches every process it started, ``setsid`` or not.
File operations open only regular files, so a fifo planted by the agent cannot make them block.

Requests (client to server) and replies:
    ``X`` exec     meta {argv, cwd, env, timeout, cap, user}, data = stdin  ->  ``O``/``E`` output chunks,
                   then ``x`` meta {exit_code, timed_out, truncated, duration}
    ``K`` kill     meta {rid}: kill everything a running exec started (no reply)
    ``r`` read     meta {path, cap, user}                                  ->  ``d`` chunks, then ``k``
    ``w`` write    meta {path, user}, data = content                       ->  ``k``
    ``t`` tar in   meta {dest, user}, data = a tar archive                 ->  ``k``
Any request may instead get ``!`` meta {code, message}; ``code`` is ENOENT, EACCES, EISDIR, EFBIG, ENOSPC,
EUSER (unknown user) or EIO. On start the server sends ``R`` (ready) with request id 0.
"""

from __future__ import annotations

import errno
import json
import os
import random
import selectors
import signal
import stat
import struct
import subprocess
import sys
import threading
import time

TYPE_CHECKING = False  # typing is imported for the type checker only: the server starts without it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO, Protocol, TypedDict

    class CommandResult(TypedDict):
        """How a command ended (:func:`run_command`, and the ``x`` reply)."""

        exit_code: int
        timed_out: bool
        truncated: bool
        duration: float

    class Put(Protocol):
        """Reports one reply record (kind, meta, data) from a file operation run as the user."""

        def __call__(self, kind: bytes, meta: dict[str, Any] | None, data: bytes = b"") -> None:
            """Send ``kind`` with ``meta`` (as JSON; ``None``: empty) and ``data``."""

    Creds = tuple[int, int, list[int], str]
    """``(uid, gid, groups, home)`` of a user."""

HEADER = struct.Struct(">IcII")
CHUNK = 1 << 16
MAX_META = 1 << 16  # largest meta of a reply (the client refuses larger ones)
MAX_DATA = CHUNK  # largest data of a reply
EXIT_GRACE = 0.1  # seconds to keep reading after the command exited while a background job holds its pipes
KILL_DRAIN = 0.3  # seconds to keep reading after a timeout kill
PR_SET_DUMPABLE, PR_CAPBSET_DROP = 4, 24
MARKER_BASE = 1 << 30  # marker groups are MARKER_BASE + a per-server random offset + request id


def kill_group(pgid: int, leader: subprocess.Popen[bytes] | None = None) -> None:
    """SIGKILL every process in group ``pgid``, reaping ``leader`` (a Popen) if given, and repeat until the
    group is empty, so processes forked meanwhile die too (gives up after 0.5 s)."""
    end = time.monotonic() + 0.5
    while True:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        if leader is not None:
            leader.wait()
            leader = None
        elif time.monotonic() > end:
            return
        else:
            time.sleep(0.002)


def _marked(gid: int) -> list[int]:
    """Live (not zombie) processes whose supplementary groups hold ``gid``."""
    found: list[int] = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/status" % name) as f:
                status = f.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("State", "").split()[:1] != ["Z"] and str(gid) in fields.get("Groups", "").split():
            found.append(int(name))
    return found


def kill_marked(gid: int, limit: float = 2.0) -> None:
    """SIGKILL every process carrying the marker group ``gid`` until none is left (or ``limit`` seconds)."""
    end = time.monotonic() + limit
    while True:
        pids = _marked(gid)
        if not pids or time.monotonic() > end:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.005)


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code


def run_command(argv: list[str], emit: Callable[[str, bytes], None], cwd: str | None = None,
                env: dict[str, str] | None = None, stdin: bytes | None = None, timeout: float | None = None,
                cap: int = 10 << 20, on_start: Callable[[int], None] | None = None,
                kill: Callable[[], None] | None = None, user: int | None = None, group: int | None = None,
                extra_groups: list[int] | None = None) -> CommandResult:
    """Run ``argv`` in its own session, streaming output to ``emit(stream, chunk)``.

    Output beyond ``cap`` bytes per stream is dropped (and reported as truncated). A command that runs
    past ``timeout`` seconds has its whole process group killed, then ``kill()`` runs (when given) to reach
    the processes that left the group.

    Args:
        argv: The command.
        emit: Gets each output chunk as ``("stdout"|"stderr", bytes)``.
        cwd: Working directory.
        env: The whole environment (``None``: this process's).
        stdin: Bytes fed to the command's standard input (``None`` or empty: none).
        timeout: Seconds before everything the command started is killed.
        cap: Bytes kept per output stream.
        on_start: Gets the command's pid (its process group) once it started.
        kill: Reaches the processes that left the group, after a timeout.
        user: Run as this uid (:class:`subprocess.Popen`'s ``user``).
        group: Run with this gid.
        extra_groups: Supplementary groups.

    Returns:
        exit_code (-1 after a timeout), timed_out, truncated, duration.

    Raises:
        FileNotFoundError: ``cwd`` does not exist.
    """
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, user=user,
                                group=group, extra_groups=extra_groups)
    except (FileNotFoundError, PermissionError, NotADirectoryError) as e:
        if cwd is not None and e.filename == cwd:
            raise FileNotFoundError(errno.ENOENT, "working directory does not exist", cwd) from e
        code = 126 if isinstance(e, PermissionError) else 127
        emit("stderr", ("%s: %s\n" % (argv[0], e.strerror)).encode())
        return {"exit_code": code, "timed_out": False, "truncated": False, "duration": time.monotonic() - start}
    if on_start is not None:
        on_start(proc.pid)

    def kill_all() -> None:
        kill_group(proc.pid, proc)
        if kill is not None:
            kill()

    assert proc.stdout is not None and proc.stderr is not None  # both are pipes
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    pending = memoryview(stdin or b"")
    writer = proc.stdin  # a pipe when there is stdin to feed
    if stdin and writer is not None:
        os.set_blocking(writer.fileno(), False)
        sel.register(writer, selectors.EVENT_WRITE, "stdin")
    counts = {"stdout": 0, "stderr": 0}
    truncated = timed_out = False
    deadline = start + timeout if timeout is not None else None
    stop_at = None  # stop reading (after a kill, or once the command exited and its pipes went quiet)
    while sel.get_map():
        now = time.monotonic()
        if deadline is not None and now >= deadline and not timed_out:
            timed_out = True
            kill_all()
            stop_at = time.monotonic() + KILL_DRAIN
        if stop_at is not None and now >= stop_at:
            break
        waits = [t - now for t in (deadline if not timed_out else None, stop_at) if t is not None]
        events = sel.select(max(0.0, min(waits + [EXIT_GRACE])))
        for key, _ in events:
            if key.data == "stdin":
                try:
                    pending = pending[os.write(key.fd, pending[:CHUNK]):]
                except BrokenPipeError:
                    pending = pending[:0]
                if not pending and writer is not None:
                    sel.unregister(writer)
                    writer.close()
                continue
            data = os.read(key.fd, CHUNK)
            if not data:
                sel.unregister(key.fileobj)
                continue
            room = cap - counts[key.data]
            counts[key.data] += len(data)
            if len(data) > room:
                truncated = True
                data = data[:max(room, 0)]
            if data:
                emit(key.data, data)
        if not events and proc.poll() is not None and stop_at is None:
            stop_at = time.monotonic() + EXIT_GRACE
    sel.close()
    for f in (proc.stdin, proc.stdout, proc.stderr):
        if f is not None and not f.closed:
            f.close()
    if timed_out:
        proc.wait()
    else:
        try:
            proc.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_all()
    return {"exit_code": -1 if timed_out else _exit_code(proc.returncode), "timed_out": timed_out,
            "truncated": truncated, "duration": time.monotonic() - start}


def error_code(exc: BaseException) -> str:
    """The protocol's name for an OS error (read-only file systems count as permission errors)."""
    if isinstance(exc, FileNotFoundError):
        return "ENOENT"
    if isinstance(exc, PermissionError) or getattr(exc, "errno", None) == errno.EROFS:
        return "EACCES"
    if isinstance(exc, IsADirectoryError):
        return "EISDIR"
    code = getattr(exc, "errno", None)
    if code in (errno.EFBIG, errno.ENOSPC, errno.EDQUOT):
        return "ENOSPC" if code != errno.EFBIG else "EFBIG"
    return "EIO"


def read_file(path: str, cap: int) -> bytes:
    """Read ``path`` whole; refuse files over ``cap`` bytes with ``EFBIG``."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > cap:
            raise OSError(errno.EFBIG, "file is %d bytes, over the read limit of %d" % (size, cap), path)
        return f.read(cap + 1)


def write_file(path: str, data: bytes) -> None:
    """Write ``data`` to ``path``, creating parent directories."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def open_regular(path: str, flags: int) -> BinaryIO:
    """Open ``path`` as a binary file object, refusing anything but a regular file without blocking on it
    (a fifo or device planted where a file is expected)."""
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", path)
        raise OSError(errno.EINVAL, "not a regular file", path)
    os.set_blocking(fd, True)
    return os.fdopen(fd, "wb" if flags & os.O_WRONLY else "rb")


def tar_in(data: bytes, dest: str) -> None:
    """Extract a tar archive (made by the host from a checked directory) into ``dest`` (created if missing).

    Runs as the sandbox's user, so it writes nothing that user could not; members with absolute or ``..``
    names, links leaving ``dest``, hard links and devices are refused all the same.
    """
    import io
    import tarfile

    os.makedirs(dest, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        members = tar.getmembers()
        for m in members:
            parts = m.name.split("/")
            bad = m.name.startswith("/") or ".." in parts or not (m.isfile() or m.isdir() or m.issym())
            if m.issym():
                target = os.path.normpath(os.path.join(os.path.dirname(m.name), m.linkname))
                bad = bad or m.linkname.startswith("/") or target == ".." or target.startswith("../")
            if bad:
                raise PermissionError(errno.EACCES, "unsafe archive member", m.name)
            m.mode &= 0o777
            target = os.path.join(dest, m.name)
            if not m.isdir() and os.path.lexists(target) and not os.path.isdir(target):
                os.unlink(target)  # never write into a fifo or through a link left there
        tar.extractall(dest, members=members)


def credentials(user: str | int) -> Creds:
    """``(uid, gid, groups, home)`` of ``user``: a name, a uid, or ``uid:gid`` (as Docker reads ``--user``).

    Raises:
        LookupError: No such user or group.
    """
    import grp
    import pwd

    name, _, group = str(user).partition(":")
    try:
        pw = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except KeyError:
        if not name.isdigit():
            raise LookupError("unknown user %r" % name) from None
        pw = None
    uid = pw.pw_uid if pw else int(name)
    gid = pw.pw_gid if pw else uid
    if group:
        try:
            gid = int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise LookupError("unknown group %r" % group) from None
    groups = os.getgrouplist(pw.pw_name, gid) if pw else [gid]
    return uid, gid, groups, (pw.pw_dir if pw else "/")


def become(creds: Creds) -> None:
    """Turn the calling (forked) process into ``creds`` for good: groups, gid, then uid."""
    uid, gid, groups, _ = creds
    os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)


def harden(drop_caps: list[int]) -> None:
    """Make this process non-dumpable and drop ``drop_caps`` (numbers) from its capability bounding set, so
    nothing it starts can regain them."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")
    for cap in drop_caps:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, %d) failed" % cap)


def _meta_of(exc: BaseException) -> dict[str, str]:
    """The ``!`` reply's meta for a failed request."""
    if isinstance(exc, LookupError):
        return {"code": "EUSER", "message": str(exc)}
    if isinstance(exc, OSError):
        return {"code": error_code(exc), "message": "%s: %s" % (exc.filename or "", exc.strerror or exc)}
    return {"code": "EIO", "message": "%s: %s" % (type(exc).__name__, exc)}


class Server:
    """Serves frames from ``inp`` and writes replies to ``out`` (both binary streams)."""

    def __init__(self, inp: BinaryIO, out: BinaryIO, user: str) -> None:
        self.inp, self.out = inp, out
        self.creds = credentials(user)  # resolved once, before any command could change /etc/passwd
        self.lock = threading.Lock()
        self.running: dict[int, tuple[int, int]] = {}  # rid -> (pgid, marker)
        self.marker_base = MARKER_BASE + random.randrange(1 << 29)

    def send(self, rid: int, kind: bytes, meta: object = None, data: bytes = b"") -> None:
        """Write one reply (split into frames of at most ``MAX_DATA`` bytes of data); ``meta`` goes as JSON."""
        m = json.dumps(meta).encode() if meta is not None else b""
        with self.lock:
            for i in range(0, max(len(data), 1), MAX_DATA):
                self.out.write(HEADER.pack(rid, kind, len(m), len(data[i:i + MAX_DATA])))
                self.out.write(m)
                self.out.write(data[i:i + MAX_DATA])
            self.out.flush()

    def _read(self, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = self.inp.read(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def serve(self) -> None:
        """Answer requests until the input ends, then kill whatever still runs."""
        self.send(0, b"R", {"pid": os.getpid(), "uid": os.getuid(), "python": sys.version.split()[0]})
        while True:
            hdr = self._read(HEADER.size)
            if hdr is None:
                break
            rid, kind, mlen, dlen = HEADER.unpack(hdr)
            meta: dict[str, Any] = json.loads(self._read(mlen) or b"{}") if mlen else {}
            data = self._read(dlen) if dlen else b""
            if kind == b"K":
                target = meta.get("rid")
                if target is not None:
                    self.kill(target)
                continue
            threading.Thread(target=self.handle, args=(rid, kind, meta, data), daemon=True).start()
        for rid in list(self.running):
            self.kill(rid)

    def kill(self, rid: int) -> None:
        """Kill everything request ``rid`` started, if it still runs."""
        found = self.running.get(rid)
        if found is not None:
            kill_group(found[0])
            kill_marked(found[1])

    def handle(self, rid: int, kind: bytes, meta: dict[str, Any], data: bytes) -> None:
        """Answer one request (in a thread of its own); any failure becomes an ``!`` reply."""
        try:
            creds = credentials(meta["user"]) if meta.get("user") else self.creds
            if kind == b"X":
                self.exec(rid, meta, data, creds)
            elif kind == b"r":
                self.as_user(rid, creds, lambda put: self._read_file(put, meta["path"], meta["cap"]))
            elif kind == b"w":
                def write(put: Put) -> None:
                    self._write_file(meta["path"], data)
                    put(b"k", {})

                self.as_user(rid, creds, write)
            elif kind == b"t":
                def extract(put: Put) -> None:
                    tar_in(data, meta["dest"])
                    put(b"k", {})

                self.as_user(rid, creds, extract)
            else:
                self.send(rid, b"!", {"code": "EIO", "message": "unknown request %r" % kind})
        except Exception as e:  # noqa: BLE001 - every failure goes back to the client
            self.send(rid, b"!", _meta_of(e))

    def exec(self, rid: int, meta: dict[str, Any], data: bytes, creds: Creds) -> None:
        """Run a command as ``creds`` with its marker group, streaming its output as replies to ``rid``."""
        marker = self.marker_base + rid % (1 << 29)
        env = dict(os.environ)
        env["HOME"] = creds[3]
        env.update(meta.get("env") or {})

        def on_start(pid: int) -> None:
            self.running[rid] = (pid, marker)

        try:
            res = run_command(meta["argv"], lambda s, c: self.send(rid, b"O" if s == "stdout" else b"E", None, c),
                              cwd=meta.get("cwd"), env=env, stdin=data, timeout=meta.get("timeout"),
                              cap=meta.get("cap", 10 << 20), on_start=on_start, kill=lambda: kill_marked(marker),
                              user=creds[0], group=creds[1], extra_groups=[*creds[2], marker])
        finally:
            self.running.pop(rid, None)
        self.send(rid, b"x", res)

    @staticmethod
    def _read_file(put: Put, path: str, cap: int) -> None:
        with open_regular(path, os.O_RDONLY) as f:
            size = os.fstat(f.fileno()).st_size
            if size > cap:
                raise OSError(errno.EFBIG, "file is %d bytes, over the read limit of %d" % (size, cap), path)
            while True:
                chunk = f.read(CHUNK)
                if not chunk:
                    break
                put(b"d", None, chunk)
        put(b"k", {})

    @staticmethod
    def _write_file(path: str, data: bytes) -> None:
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open_regular(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) as f:
            f.write(data)

    def as_user(self, rid: int, creds: Creds, op: Callable[[Put], object]) -> None:
        """Run ``op(put)`` in a child process that is ``creds`` and nothing more; what it ``put``s (kind,
        meta, data records through a pipe) is relayed as replies to request ``rid``."""
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: drop to the user, do the operation, report through the pipe
            status = 1
            try:
                os.close(r)
                os.closerange(0, 2)  # the server's channel stays out of the child's reach
                out = os.fdopen(w, "wb")

                def put(kind: bytes, meta: dict[str, Any] | None, data: bytes = b"") -> None:
                    m = json.dumps(meta).encode() if meta is not None else b""
                    out.write(HEADER.pack(0, kind, len(m), len(data)) + m + data)

                try:
                    become(creds)
                    op(put)
                except Exception as e:  # noqa: BLE001 - reported to the client
                    put(b"!", _meta_of(e))
                out.flush()
                status = 0
            finally:
                os._exit(status)
        os.close(w)
        final: tuple[bytes, object] | None = None
        with os.fdopen(r, "rb") as inp:
            while True:
                hdr = inp.read(HEADER.size)
                if len(hdr) < HEADER.size:
                    break
                _, kind, mlen, dlen = HEADER.unpack(hdr)
                if mlen > MAX_META or dlen > MAX_DATA:
                    break
                m = inp.read(mlen)
                meta = json.loads(m) if m else None
                data = inp.read(dlen)
                if kind in (b"k", b"!"):
                    final = (kind, meta)
                    break
                self.send(rid, kind, meta, data)
        os.waitpid(pid, 0)
        if final is None:
            final = (b"!", {"code": "EIO", "message": "the file operation was interrupted"})
        self.send(rid, final[0], final[1])


def login_shell(user: str, drop_caps: list[int]) -> None:
    """Replace this (root) process with an interactive shell as ``user``, hardened as every command the server
    runs: ``drop_caps`` gone from the bounding set, the user's groups plus a marker group, no capabilities."""
    harden(drop_caps)
    uid, gid, groups, home = credentials(user)
    become((uid, gid, [*groups, MARKER_BASE + random.randrange(1 << 29)], home))
    shell = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
    os.execve(shell, [shell, "-i"], {**os.environ, "HOME": home, "TERM": os.environ.get("TERM", "xterm-256color")})


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if sys.argv[1] == "--shell":  # argv: --shell, the user, the capability numbers to drop
        login_shell(sys.argv[2], [int(c) for c in sys.argv[3:]])
    # argv: the default user, then the capability numbers to drop from the bounding set
    harden([int(c) for c in sys.argv[2:]])
    Server(sys.stdin.buffer, sys.stdout.buffer, sys.argv[1]).serve()
