"""An IPython kernel inside a Docker sandbox, driven from the host with ``jupyter_client``.

The kernel (``ipykernel``, from ``/opt/lab-kernel`` in the image, appended to ``sys.path`` so the solver's own
packages come first) runs inside the sandbox as one command of its exec server: the sandbox's user, no
capabilities, its own marker group (so killing it reaches everything it started). It listens on TCP ports of
the container's own loopback, which exists with no network at all. The host reaches those ports through the
engine, not a network: ``jupyter_client`` connects over ZeroMQ IPC to Unix sockets in a private host
directory (mode 0700), and each connection made there is forwarded byte for byte through an attached
``docker exec`` of a small pipe (``python3 -I -S``) that connects to the port on the container's loopback.
The host never connects anywhere the sandbox names: the sandbox can talk to the host's ZeroMQ sockets and
nothing else, and its messages are parsed as untrusted data.

A cell past its timeout is interrupted (``interrupt_request`` on the control channel: the kernel and its
state survive); a kernel that does not come back within a grace period, or that died (``os._exit``, OOM), is
reported and restarted on the next call. A restored snapshot restarts the kernel: files come back, kernel
state does not.
"""

from __future__ import annotations

import atexit
import base64
import json
import random
import re
import shutil
import socket
import struct
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import zmq

from lab.sandbox.base import Sandbox, SandboxError, SandboxUnavailable
from lab.sandbox.docker import DockerSandbox, attached_socket

if TYPE_CHECKING:
    from jupyter_client import BlockingKernelClient
    from jupyter_client.connect import KernelConnectionInfo

KERNEL_PATH = "/opt/lab-kernel"
"""Where images install ipykernel and its dependencies (``pip install --target``)."""
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
INTERRUPT_GRACE = 5.0
"""Seconds an interrupted cell may take to stop before the kernel is killed and restarted."""
START_TIMEOUT = 60.0
TEXT_CAP = 100_000
"""Characters of a cell's text output kept (the rest is cut, the cut is said)."""
MESSAGE_CAP = 64 << 20
"""Largest message the host accepts from a kernel (ZeroMQ drops the connection on a bigger one)."""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_FRAME = struct.Struct(">BxxxL")
_RUNTIME = "/tmp/.lab-kernel"

# Runs in the sandbox: connects to one kernel port on the container's loopback and pipes bytes between it and
# stdin/stdout. Retries the connection while the kernel starts, so nothing the host sent is lost.
_PIPE = r"""
import os, select, socket, sys, time
end = time.monotonic() + 60
while True:
    try:
        s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
        break
    except OSError:
        if time.monotonic() > end:
            sys.exit(1)
        time.sleep(0.02)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while True:
    r = select.select([0, s], [], [])[0]
    if 0 in r:
        d = os.read(0, 65536)
        if not d:
            break
        s.sendall(d)
    if s in r:
        d = s.recv(65536)
        if not d:
            break
        while d:
            d = d[os.write(1, d):]
"""

# Runs in the sandbox: records the kernel's pid, then starts ipykernel with its packages after the solver's.
_LAUNCH = f"""
import os, sys
os.makedirs({_RUNTIME!r}, exist_ok=True)
with open({_RUNTIME!r} + "/pid", "w") as f:
    f.write(str(os.getpid()))
sys.path.append({KERNEL_PATH!r})
sys.argv = ["ipykernel", "-f", sys.argv[1]]
from ipykernel.kernelapp import launch_new_instance
launch_new_instance()
"""

# Runs in the sandbox: SIGKILL every process holding the kernel's marker group (everything it started).
_KILL = r"""
import os, signal, sys
def groups(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("Groups:"):
                return {int(g) for g in line.split()[1:] if int(g) >= 1 << 30}
    except OSError:
        pass
    return set()
mark = groups(sys.argv[1])
for _ in range(3):
    for p in os.listdir("/proc"):
        if p.isdigit() and (groups(p) & mark or p == sys.argv[1]):
            try:
                os.kill(int(p), signal.SIGKILL)
            except OSError:
                pass
"""


class KernelError(SandboxError):
    """The kernel could not start or be reached."""


@dataclass
class Display:
    """A rich output of a cell: a file in the sandbox (images) or text.

    Attributes:
        mime: Its MIME type (``image/png``, ``text/html`` ...).
        path: Where the file was saved in the sandbox (images), else ``None``.
        size: Bytes of the saved file.
        text: Its ``text/plain`` form, when it has one.
    """

    mime: str
    path: str | None = None
    size: int = 0
    text: str = ""


@dataclass
class CellResult:
    """What one cell did.

    Attributes:
        status: ``ok``, ``error`` (an exception), ``timeout`` (interrupted at its timeout; the kernel lives),
            ``died`` (the kernel died; its state is lost).
        code: The cell's source.
        execution_count: The kernel's counter for the cell (``None`` when it never replied).
        stdout: Text written to standard output.
        stderr: Text written to standard error.
        result: The ``text/plain`` repr of the cell's value, if any.
        error: Exception name, value and traceback (ANSI colours removed), when ``status`` is ``error``.
        displays: Rich outputs (images saved as files).
        duration: Seconds from sending the cell to its end.
        notes: What the kernel itself went through (started, restarted, lost state).
    """

    status: str
    code: str = ""
    execution_count: int | None = None
    stdout: str = ""
    stderr: str = ""
    result: str | None = None
    error: str | None = None
    displays: list[Display] = field(default_factory=list)
    duration: float = 0.0
    notes: list[str] = field(default_factory=list)

    def outputs(self) -> dict[str, Any]:
        """The outputs as a JSON-able dict (what a trace event records)."""
        return {"code": self.code, "status": self.status, "execution_count": self.execution_count,
                "stdout": self.stdout,
                "stderr": self.stderr, "result": self.result, "error": self.error,
                "displays": [vars(d) for d in self.displays], "duration_s": round(self.duration, 6),
                "notes": self.notes}

    def text(self) -> str:
        """The cell's outputs as observation text, with a status line when it did not end normally."""
        parts = [*self.notes]
        if self.stdout:
            parts.append(self.stdout.rstrip("\n"))
        if self.stderr:
            parts.append(self.stderr.rstrip("\n"))
        for d in self.displays:
            parts.append(f"[{d.mime} saved to {d.path} ({d.size} bytes)]" if d.path else d.text)
        if self.result is not None:
            parts.append(self.result)
        if self.error:
            parts.append(self.error)
        if self.status == "timeout":
            parts.append("[interrupted at the timeout; the kernel and its variables survive]")
        return "\n".join(p for p in parts if p) or "[no output]"


def _clip(text: str) -> str:
    return text if len(text) <= TEXT_CAP else f"{text[:TEXT_CAP]}\n[... {len(text) - TEXT_CAP} characters cut]"


class _Forward:
    """Unix sockets on the host, one per kernel port; each connection is piped into the sandbox through an
    attached ``docker exec`` that connects to that port on the container's loopback."""

    def __init__(self, sandbox: DockerSandbox, ports: dict[str, int]) -> None:
        self.sandbox = sandbox
        self.dir = tempfile.mkdtemp(prefix="lab-kernel-")  # mode 0700: only this user reaches the sockets
        self.prefix = f"{self.dir}/k"
        self.closed = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        for port in ports.values():
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listener.bind(f"{self.prefix}-{port}")
            listener.listen(16)
            self._socks.append(listener)
            threading.Thread(target=self._accept, args=(listener, port), name="lab-kernel-forward",
                             daemon=True).start()

    def _accept(self, listener: socket.socket, port: int) -> None:
        while not self.closed:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(conn, port), name="lab-kernel-pipe", daemon=True).start()

    def _pipe(self, conn: socket.socket, port: int) -> None:
        try:
            api = self.sandbox.client.api
            eid: str = api.exec_create(self.sandbox.container_id, ["python3", "-I", "-S", "-c", _PIPE, str(port)],
                                       stdin=True, stdout=True, stderr=False, user=self.sandbox.user)["Id"]
            raw = attached_socket(api.exec_start(eid, socket=True))
        except Exception:  # noqa: BLE001 - sandbox gone: the client sees a closed connection and retries
            conn.close()
            return
        with self._lock:
            if self.closed:
                conn.close()
                raw.close()
                return
            self._socks += [conn, raw]
        up = threading.Thread(target=self._up, args=(conn, raw), name="lab-kernel-up", daemon=True)
        up.start()
        try:
            while True:  # the engine's frames (8-byte header) carry the pipe's stdout back
                head = _recv_exact(raw, _FRAME.size)
                if head is None:
                    break
                stream, length = _FRAME.unpack(head)
                data = _recv_exact(raw, length) if length else b""
                if data is None or stream != 1:
                    break
                conn.sendall(data)
        except OSError:
            pass
        finally:
            for s in (conn, raw):
                _close(s)

    @staticmethod
    def _up(conn: socket.socket, raw: socket.socket) -> None:
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                raw.sendall(data)
        except OSError:
            pass
        try:
            raw.shutdown(socket.SHUT_WR)  # the pipe sees end of input and exits
        except OSError:
            pass

    def close(self) -> None:
        """Stop forwarding: close the listeners and every piped connection, remove the socket directory."""
        with self._lock:
            self.closed = True
            socks, self._socks = self._socks, []
        for s in socks:
            _close(s)
        shutil.rmtree(self.dir, ignore_errors=True)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 16))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()


class CellCollector:
    """Collects one cell's iopub messages into a :class:`CellResult`."""

    def __init__(self, kernel: SandboxKernel, code: str, started: float) -> None:
        self.kernel = kernel
        self.res = CellResult("ok", code)
        self.started = started
        self.out: list[str] = []
        self.err: list[str] = []
        self.dropped = 0

    def feed(self, msg: dict[str, Any]) -> bool:
        """Take one iopub message of this cell; True when the cell is done (the kernel went idle)."""
        res = self.res
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            text = content.get("text", "").replace("\r\n", "\n")  # `!cmd` output comes through a pty
            into = self.out if content.get("name") == "stdout" else self.err
            kept = sum(map(len, into))
            if kept <= TEXT_CAP:  # what is past the cap is counted, not kept
                into.append(text[: TEXT_CAP + 1 - kept])
            self.dropped += max(0, len(text) - (TEXT_CAP + 1 - kept))
        elif kind == "execute_input":
            res.execution_count = content.get("execution_count")
        elif kind == "execute_result":
            res.execution_count = content.get("execution_count", res.execution_count)
            res.result = _clip(content.get("data", {}).get("text/plain", ""))
            res.displays += self.kernel._rich(content.get("data", {}), text_shown=True)
        elif kind == "display_data":
            res.displays += self.kernel._rich(content.get("data", {}), text_shown=False)
        elif kind == "error":
            if res.status != "timeout":
                res.status = "error"
            res.error = _clip(_ANSI.sub("", "\n".join(content.get("traceback") or [])) or
                              f"{content.get('ename')}: {content.get('evalue')}")
        elif kind == "status" and content.get("execution_state") == "idle":
            return True
        return False

    def finish(self) -> CellResult:
        """The cell's result, once the kernel went idle (or the cell ended otherwise)."""
        res = self.res
        res.stdout, res.stderr = _clip("".join(self.out)), _clip("".join(self.err))
        if self.dropped:
            res.notes.append(f"[{self.dropped} more characters of output were not kept]")
        res.duration = time.monotonic() - self.started
        if res.status == "timeout":
            res.error = None if res.error is None else res.error.splitlines()[-1]
        return res


class SandboxKernel:
    """One IPython kernel inside one Docker sandbox (started on first use; thread-safe, one cell at a time).

    Args:
        sandbox: An open :class:`lab.sandbox.docker.DockerSandbox` whose image has ipykernel in
            ``/opt/lab-kernel`` (``sandboxes/repo-setup`` has).
        outputs_dir: Directory of the sandbox where rich outputs (images) are saved (default
            ``<workdir>/.kernel_outputs``).
    """

    def __init__(self, sandbox: Sandbox, *, outputs_dir: str | None = None) -> None:
        if not isinstance(sandbox, DockerSandbox):
            raise KernelError(f"the kernel runs in Docker sandboxes; this one is {getattr(sandbox, 'backend', '?')!r}")
        self.sandbox = sandbox
        self.outputs_dir = outputs_dir or f"{sandbox.workdir.rstrip('/')}/.kernel_outputs"
        self.client: BlockingKernelClient | None = None
        self.connection_info: KernelConnectionInfo | None = None
        self._forward: _Forward | None = None
        self._thread: threading.Thread | None = None
        self._exited = threading.Event()
        self.exit_code: int | None = None
        self._stderr = bytearray()
        self._container: str | None = None
        self._lock = threading.RLock()
        self.starts = 0
        self._saved = 0
        self.setup_code: str | None = None
        """Code run silently in every kernel this starts (e.g. magics), before its first cell."""

    # -- lifecycle --------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """The kernel runs, in this sandbox's current container."""
        return (self.client is not None and not self._exited.is_set()
                and self._container == self.sandbox.container_id)

    def start(self) -> None:
        """Start the kernel (and the forwarding) and wait until it answers.

        Raises:
            KernelError: It did not start (the image lacks ipykernel, or it died at once; its stderr is said).
        """
        from jupyter_client import BlockingKernelClient

        with self._lock:
            self._stop()
            ports = dict(zip(CHANNELS, random.sample(range(20000, 60000), len(CHANNELS)), strict=True))
            key = uuid.uuid4().hex
            inside: KernelConnectionInfo = {
                "transport": "tcp", "ip": "127.0.0.1", "key": key, "signature_scheme": "hmac-sha256",
                "kernel_name": "python3", "shell_port": ports["shell"], "iopub_port": ports["iopub"],
                "stdin_port": ports["stdin"], "control_port": ports["control"], "hb_port": ports["hb"]}
            conn_file = f"{_RUNTIME}/kernel-{self.starts}.json"
            self.sandbox.exec(["mkdir", "-p", _RUNTIME], timeout=30)
            self.sandbox.write_file(conn_file, json.dumps(inside))
            self._exited = threading.Event()
            self.exit_code = None
            self._stderr = bytearray()
            self._container = self.sandbox.container_id
            env = {"IPYTHONDIR": f"{_RUNTIME}/ipython", "JUPYTER_RUNTIME_DIR": f"{_RUNTIME}/runtime",
                   "JUPYTER_DATA_DIR": f"{_RUNTIME}/data", "JUPYTER_CONFIG_DIR": f"{_RUNTIME}/config",
                   "MPLBACKEND": "module://matplotlib_inline.backend_inline", "PYTHONUNBUFFERED": "1"}
            stream = self.sandbox.exec_stream(["python3", "-c", _LAUNCH, conn_file], env=env, timeout=None)
            self._thread = threading.Thread(target=self._watch, args=(stream, self._exited), name="lab-kernel",
                                            daemon=True)
            self._thread.start()
            self._forward = _Forward(self.sandbox, ports)
            self.connection_info = {**inside, "transport": "ipc", "ip": self._forward.prefix}
            context = zmq.Context()  # its own, so the cap below holds for this kernel's sockets only
            context.setsockopt(zmq.MAXMSGSIZE, MESSAGE_CAP)
            kc = BlockingKernelClient(context=context)
            kc.load_connection_info(self.connection_info)
            kc.start_channels(hb=False)
            self.client = kc
            self.starts += 1
            self._wait_ready(kc)
            if self.setup_code:
                msg_id = kc.execute(self.setup_code, silent=True, store_history=False)
                end = time.monotonic() + START_TIMEOUT
                while time.monotonic() < end and not self._exited.is_set():
                    try:
                        if kc.get_shell_msg(timeout=0.1)["parent_header"].get("msg_id") == msg_id:
                            break
                    except Exception:  # noqa: BLE001 - queue.Empty
                        continue

    def _watch(self, stream: Iterator[tuple[str, bytes]], exited: threading.Event) -> None:
        try:
            for kind, chunk in stream:
                if kind == "stderr":
                    self._stderr += chunk
                    del self._stderr[:-8192]
                elif kind == "exit":
                    self.exit_code = int(chunk)
        except Exception as e:  # noqa: BLE001 - the sandbox went away; said as the kernel's death
            self._stderr += f"\n{type(e).__name__}: {e}".encode()
        finally:
            exited.set()

    def _wait_ready(self, kc: BlockingKernelClient) -> None:
        end = time.monotonic() + START_TIMEOUT
        while time.monotonic() < end:
            msg_id = kc.kernel_info()
            resend = time.monotonic() + 2.0
            while time.monotonic() < resend:
                if self._exited.is_set():
                    raise KernelError(f"the kernel exited at start (exit code {self.exit_code}): {self.stderr_tail()}")
                try:
                    reply = kc.get_shell_msg(timeout=0.1)
                except Exception:  # noqa: BLE001 - queue.Empty
                    continue
                if reply["parent_header"].get("msg_id") == msg_id:
                    self._drain_iopub(kc)
                    return
        self._stop()
        raise KernelError(f"the kernel did not answer within {START_TIMEOUT:.0f} s: {self.stderr_tail()}")

    @staticmethod
    def _drain_iopub(kc: BlockingKernelClient) -> None:
        while True:
            try:
                kc.get_iopub_msg(timeout=0.05)
            except Exception:  # noqa: BLE001 - queue.Empty: drained
                return

    def stderr_tail(self) -> str:
        """The end of what the kernel process wrote to its stderr (why it failed to start)."""
        text = _ANSI.sub("", self._stderr.decode("utf-8", "replace"))
        text = "\n".join(line for line in text.splitlines()
                         if "running over TCP without encryption" not in line).strip()  # loopback in the sandbox
        if "No module named 'ipykernel'" in text:
            return (f"the sandbox image {self.sandbox.spec.image!r} has no ipykernel in {KERNEL_PATH} "
                    "(build it from a definition with a kernel-wheels.txt, e.g. `lab sandbox build repo-setup`)")
        return text[-1500:] or "(no output)"

    def _kill(self) -> None:
        """SIGKILL the kernel and everything it started."""
        try:
            pid = self.sandbox.read_file(f"{_RUNTIME}/pid").decode().strip()
            if pid.isdigit():
                self.sandbox.exec(["python3", "-I", "-S", "-c", _KILL, pid], timeout=30)
        except (OSError, SandboxError):
            pass
        self._exited.wait(10)

    def _disconnect(self) -> None:
        if self.client is not None:
            self.client.stop_channels()
            self.client.context.destroy(linger=0)
            self.client = None
        if self._forward is not None:
            self._forward.close()
            self._forward = None

    def _stop(self) -> None:
        self._disconnect()
        if self._thread is not None and not self._exited.is_set() and self._container == self.sandbox.container_id:
            self._kill()
        self._thread = None

    def restart(self) -> None:
        """Kill the kernel (if running) and start a fresh one: variables are lost, files stay."""
        with self._lock:
            self._stop()
            self.start()

    def shutdown(self) -> None:
        """Stop the kernel and its forwarding (idempotent)."""
        with self._lock:
            if not self.sandbox.closed:
                self._stop()
            else:
                self._disconnect()

    def interrupt(self) -> None:
        """Ask the kernel to interrupt the running cell (``interrupt_request`` on the control channel)."""
        if self.client is not None:
            self.client.control_channel.send(self.client.session.msg("interrupt_request", content={}))

    # -- cells --------------------------------------------------------------------------------------

    def execute(self, code: str, *, timeout: float | None = 300.0) -> CellResult:
        """Run one cell; start the kernel first when it is not running (saying why in ``notes``).

        Args:
            code: The cell's source (IPython syntax: ``!cmd``, ``%magic``).
            timeout: Seconds before the cell is interrupted (``None``: no limit).

        Raises:
            KernelError: The kernel could not be (re)started.
            SandboxUnavailable: The sandbox itself is gone.
        """
        with self._lock:
            notes: list[str] = []
            if not self.alive:
                if self.client is not None and self._container != self.sandbox.container_id:
                    notes.append("[the sandbox was restored from a snapshot: its files are back, kernel state is "
                                 "not; a fresh kernel started]")
                elif self.client is not None:
                    notes.append(f"[the kernel had died (exit code {self.exit_code}); a fresh kernel started: "
                                 "variables and imports are lost, files stay]")
                self.start()
            res = self._run(code, timeout)
            res.notes = notes + res.notes
            return res

    def _run(self, code: str, timeout: float | None) -> CellResult:
        kc = self.client
        if kc is None:  # execute() started it
            raise KernelError("the kernel is not running")
        started = time.monotonic()
        msg_id = kc.execute(code, store_history=True, allow_stdin=False, stop_on_error=False)
        cell = CellCollector(self, code, started)
        res = cell.res
        interrupted_at: float | None = None
        deadline = None if timeout is None else started + timeout
        while True:
            now = time.monotonic()
            if deadline is not None and interrupted_at is None and now > deadline:
                self.interrupt()
                interrupted_at = now
                res.status = "timeout"
            if interrupted_at is not None and now > interrupted_at + INTERRUPT_GRACE:
                self._kill()
                self._stop()
                res.status = "died"
                res.notes.append(f"[the cell ran past its timeout of {timeout} s and did not stop when interrupted; "
                                 "the kernel was killed: variables are lost, files stay; the next cell starts a "
                                 "fresh kernel]")
                break
            if self._exited.is_set():
                res.status = "died"
                tail = self.stderr_tail()
                res.notes.append(f"[the kernel died while running the cell (exit code {self.exit_code}); variables "
                                 "and imports are lost, files stay; the next cell starts a fresh kernel]"
                                 + (f"\n{tail}" if tail != "(no output)" else ""))
                break
            if self.sandbox.closed:
                raise SandboxUnavailable(f"sandbox {self.sandbox.id} closed while a cell ran")
            try:
                msg = kc.get_iopub_msg(timeout=0.1)
            except Exception:  # noqa: BLE001 - queue.Empty
                continue
            if msg["parent_header"].get("msg_id") == msg_id and cell.feed(msg):
                break
        return cell.finish()

    def _rich(self, data: dict[str, Any], *, text_shown: bool) -> list[Display]:
        """Images are saved as files in the sandbox; other rich types keep their text form."""
        shown = []
        for mime, value in data.items():
            if mime.startswith("image/") and mime != "image/svg+xml":
                raw = base64.b64decode(value)
                self._saved += 1
                ext = mime.split("/", 1)[1].split("+")[0]
                path = f"{self.outputs_dir}/output-{self.starts}-{self._saved}.{ext}"
                self.sandbox.write_file(path, raw)
                shown.append(Display(mime, path, len(raw), data.get("text/plain", "")))
        if not shown and not text_shown and "text/plain" in data:
            shown.append(Display("text/plain", text=_clip(data["text/plain"])))
        return shown


_kernels: dict[str, SandboxKernel] = {}
_kernels_lock = threading.Lock()


def kernel_for(sandbox: Sandbox) -> SandboxKernel:
    """The sandbox's kernel (one per sandbox, made on first use, started on its first cell). Kernels of
    sandboxes closed since are released here and at exit."""
    with _kernels_lock:
        for sid, k in list(_kernels.items()):
            if k.sandbox.closed:
                del _kernels[sid]
                k.shutdown()
        found = _kernels.get(sandbox.id)
        if found is None or found.sandbox is not sandbox:
            found = _kernels[sandbox.id] = SandboxKernel(sandbox)
        return found


def shutdown_kernels() -> None:
    """Stop every kernel this process started (also run at exit)."""
    with _kernels_lock:
        kernels = list(_kernels.values())
        _kernels.clear()
    for k in kernels:
        try:
            k.shutdown()
        except Exception:  # noqa: BLE001 - at exit, the sandbox may already be gone
            pass


atexit.register(shutdown_kernels)

__all__ = ["CellCollector", "CellResult", "Display", "KernelError", "SandboxKernel", "kernel_for", "shutdown_kernels"]
