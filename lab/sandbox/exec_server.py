"""The resident exec server that runs inside a sandbox, and the command runner it shares with the local backend.

This module is standard-library only and runs under the sandbox image's own ``python3`` (3.8 or newer): the
Docker backend starts it once per sandbox and user through one attached exec and then talks to it with
frames on its stdin/stdout. Each frame is ``HEADER`` (request id, kind byte, meta length, data length),
then a JSON ``meta`` object, then raw ``data`` bytes.

Requests (client to server) and replies:
    ``X`` exec     meta {argv, cwd, env, timeout, cap}, data = stdin  ->  ``O``/``E`` output chunks, then ``x``
                   meta {exit_code, timed_out, truncated, duration}
    ``K`` kill     meta {rid}: kill the process group of a running exec (no reply)
    ``r`` read     meta {path, cap}                                  ->  ``d`` data
    ``w`` write    meta {path}, data = content                       ->  ``k``
    ``T`` tar out  meta {path}                                       ->  ``d`` a tar archive of path
    ``t`` tar in   meta {dest}, data = a tar archive                 ->  ``k``
Any request may instead get ``!`` meta {code, message}; ``code`` is ENOENT, EACCES, EISDIR, EFBIG or EIO.
On start the server sends ``R`` (ready) with request id 0.
"""

import errno
import json
import os
import selectors
import signal
import struct
import subprocess
import sys
import threading
import time

HEADER = struct.Struct(">IcII")
CHUNK = 1 << 16
EXIT_GRACE = 0.1  # seconds to keep reading after the command exited while a background job holds its pipes
KILL_DRAIN = 0.3  # seconds to keep reading after a timeout kill


def kill_group(pgid, leader=None):
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


def _exit_code(code):
    return 128 - code if code < 0 else code


def run_command(argv, emit, cwd=None, env=None, stdin=None, timeout=None, cap=10 << 20, on_start=None):
    """Run ``argv`` in its own process group, streaming output to ``emit(stream, chunk)``.

    Output beyond ``cap`` bytes per stream is dropped (and reported as truncated). A command that runs
    past ``timeout`` seconds has its whole process group killed.

    Returns:
        dict with exit_code (-1 after a timeout), timed_out, truncated, duration.

    Raises:
        FileNotFoundError: ``cwd`` does not exist.
    """
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    except (FileNotFoundError, PermissionError, NotADirectoryError) as e:
        if cwd is not None and e.filename == cwd:
            raise FileNotFoundError(errno.ENOENT, "working directory does not exist", cwd)
        code = 126 if isinstance(e, PermissionError) else 127
        emit("stderr", ("%s: %s\n" % (argv[0], e.strerror)).encode())
        return {"exit_code": code, "timed_out": False, "truncated": False, "duration": time.monotonic() - start}
    if on_start is not None:
        on_start(proc.pid)
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
    sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
    pending = memoryview(stdin or b"")
    if stdin:
        os.set_blocking(proc.stdin.fileno(), False)
        sel.register(proc.stdin, selectors.EVENT_WRITE, "stdin")
    counts = {"stdout": 0, "stderr": 0}
    truncated = timed_out = False
    deadline = start + timeout if timeout is not None else None
    stop_at = None  # stop reading (after a kill, or once the command exited and its pipes went quiet)
    while sel.get_map():
        now = time.monotonic()
        if deadline is not None and now >= deadline and not timed_out:
            timed_out = True
            kill_group(proc.pid, proc)
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
                if not pending:
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
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
            kill_group(proc.pid, proc)
    return {"exit_code": -1 if timed_out else _exit_code(proc.returncode), "timed_out": timed_out,
            "truncated": truncated, "duration": time.monotonic() - start}


def error_code(exc):
    """The protocol's name for an OS error (read-only file systems count as permission errors)."""
    if isinstance(exc, FileNotFoundError):
        return "ENOENT"
    if isinstance(exc, PermissionError) or getattr(exc, "errno", None) == errno.EROFS:
        return "EACCES"
    if isinstance(exc, IsADirectoryError):
        return "EISDIR"
    return "EIO"


def read_file(path, cap):
    """Read ``path`` whole; refuse files over ``cap`` bytes with ``EFBIG``."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > cap:
            raise OSError(errno.EFBIG, "file is %d bytes, over the read limit of %d" % (size, cap), path)
        return f.read(cap + 1)


def write_file(path, data):
    """Write ``data`` to ``path``, creating parent directories."""
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def tar_out(path):
    """A tar archive of ``path`` (a file or a directory, stored under its base name)."""
    import io
    import tarfile

    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "no such file or directory", path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(path, arcname=os.path.basename(os.path.normpath(path)) or ".")
    return buf.getvalue()


def tar_in(data, dest):
    """Extract a tar archive into ``dest`` (created if missing); refuses members that escape ``dest``."""
    import io
    import tarfile

    os.makedirs(dest, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
            return
        root = os.path.realpath(dest)
        for m in tar.getmembers():
            target = os.path.realpath(os.path.join(dest, m.name))
            if not (target == root or target.startswith(root + os.sep)) or m.issym() or m.islnk() or m.isdev():
                raise PermissionError(errno.EACCES, "unsafe archive member", m.name)
        tar.extractall(dest)


class Server:
    """Serves frames from ``inp`` and writes replies to ``out`` (both binary streams)."""

    def __init__(self, inp, out):
        self.inp, self.out = inp, out
        self.lock = threading.Lock()
        self.groups = {}

    def send(self, rid, kind, meta=None, data=b""):
        m = json.dumps(meta).encode() if meta is not None else b""
        with self.lock:
            self.out.write(HEADER.pack(rid, kind, len(m), len(data)))
            self.out.write(m)
            if data:
                self.out.write(data)
            self.out.flush()

    def _read(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.inp.read(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def serve(self):
        cwd = os.getcwd()
        self.send(0, b"R", {"pid": os.getpid(), "uid": os.getuid(), "cwd": cwd,
                            "writable": os.access(cwd, os.W_OK), "python": sys.version.split()[0]})
        while True:
            hdr = self._read(HEADER.size)
            if hdr is None:
                break
            rid, kind, mlen, dlen = HEADER.unpack(hdr)
            meta = json.loads(self._read(mlen) or b"{}") if mlen else {}
            data = self._read(dlen) if dlen else b""
            if kind == b"K":
                pgid = self.groups.get(meta.get("rid"))
                if pgid is not None:
                    kill_group(pgid)
                continue
            threading.Thread(target=self.handle, args=(rid, kind, meta, data), daemon=True).start()
        for pgid in list(self.groups.values()):
            kill_group(pgid)

    def handle(self, rid, kind, meta, data):
        try:
            if kind == b"X":
                env = dict(os.environ)
                env.update(meta.get("env") or {})

                def on_start(pid):
                    self.groups[rid] = pid

                try:
                    res = run_command(meta["argv"], lambda s, c: self.send(rid, b"O" if s == "stdout" else b"E",
                                                                            None, c),
                                      cwd=meta.get("cwd"), env=env, stdin=data, timeout=meta.get("timeout"),
                                      cap=meta.get("cap", 10 << 20), on_start=on_start)
                finally:
                    self.groups.pop(rid, None)
                self.send(rid, b"x", res)
            elif kind == b"r":
                self.send(rid, b"d", {}, read_file(meta["path"], meta["cap"]))
            elif kind == b"w":
                write_file(meta["path"], data)
                self.send(rid, b"k", {})
            elif kind == b"T":
                self.send(rid, b"d", {}, tar_out(meta["path"]))
            elif kind == b"t":
                tar_in(data, meta["dest"])
                self.send(rid, b"k", {})
            else:
                self.send(rid, b"!", {"code": "EIO", "message": "unknown request %r" % kind})
        except OSError as e:
            code = "EFBIG" if e.errno == errno.EFBIG else error_code(e)
            self.send(rid, b"!", {"code": code, "message": "%s: %s" % (e.filename or "", e.strerror or e)})
        except Exception as e:  # noqa: BLE001 - every failure goes back to the client
            self.send(rid, b"!", {"code": "EIO", "message": "%s: %s" % (type(e).__name__, e)})


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    Server(sys.stdin.buffer, sys.stdout.buffer).serve()
