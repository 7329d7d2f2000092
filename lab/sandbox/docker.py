"""Docker backend: hardened containers driven through the ``docker`` SDK, with a resident exec server inside.

Each sandbox is one container (network none, every capability dropped but the four the exec server needs,
no-new-privileges, read-only root, limits, init) whose workdir is a size-limited filesystem of its own (an
ext4 image on a loop device, seeded from the image). Commands and file operations go to a small server
(:mod:`lab.sandbox.exec_server`) started once per sandbox through one attached exec; it answers in well under
a millisecond, where a fresh ``exec`` costs tens. The server runs as root in the container, non-dumpable,
and runs every command as the sandbox's user with no capabilities, so nothing in the sandbox can reach its
channel. The host still trusts nothing it reads: every frame is bounded, every reply is counted against the
request's limit, every exec with a timeout has a host-side deadline, and archives are checked member by
member (:mod:`lab.sandbox.archive`). A sandbox that breaks these rules is marked broken, never waited on.
"""

from __future__ import annotations

import io
import json
import os
import queue
import shutil
import socket
import struct
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from lab.sandbox import archive, exec_server
from lab.sandbox.base import ExecResult, SandboxError, SandboxUnavailable, SnapshotRef
from lab.sandbox.common import BaseSandbox, make_result
from lab.sandbox.factory import SANDBOX_BACKENDS
from lab.sandbox.gc import LABEL, SNAPSHOT, gc_docker_once_in_background, owner_labels
from lab.sandbox.spec import SandboxSpec
from lab.traces.recorder import RunRecorder

if TYPE_CHECKING:
    from docker import APIClient, DockerClient
    from docker.models.containers import Container

    from lab.sandbox.exec_server import CommandResult

_SERVER_SOURCE = Path(exec_server.__file__).read_text()
_SERVER_ARGV = ["python3", "-I", "-S", "-c", _SERVER_SOURCE]
_SERVER_CAPS = {"KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8}
"""Capabilities the exec server holds (and drops from the bounding set of what it runs, unless the spec
asks for them in ``cap_add``), by Linux number."""
_DOCKER_FRAME = struct.Struct(">BxxxL")
_DOCKER_FRAME_MAX = 1 << 20
_REPLY_KINDS = frozenset({b"R", b"O", b"E", b"x", b"d", b"k", b"!"})
_START_TIMEOUT = 20.0
DEADLINE_GRACE = 10.0
"""Seconds past an exec's timeout after which the host declares the sandbox broken."""
FILE_DEADLINE = 300.0
"""Seconds a file operation may take before the host declares the sandbox broken."""
_ERRORS: dict[str, type[OSError]] = {"ENOENT": FileNotFoundError, "EACCES": PermissionError,
                                     "EISDIR": IsADirectoryError}

_client: DockerClient | None = None
_client_lock = threading.Lock()
_image_users: dict[str, str] = {}


def docker_client() -> DockerClient:
    """The process's Docker client (one connection pool shared by all sandboxes).

    Raises:
        SandboxUnavailable: No Docker engine is reachable.
    """
    global _client
    with _client_lock:
        if _client is None:
            import docker

            try:
                c: DockerClient = docker.from_env(max_pool_size=64, timeout=120)
                c.ping()
            except Exception as e:  # noqa: BLE001 - any failure means no engine
                raise SandboxUnavailable(
                    f"no Docker engine reachable ({type(e).__name__}: {e}); start dockerd (scripts/machine.sh) "
                    "or use SandboxSpec(backend='local')") from e
            _client = c
        return _client


def attached_socket(attached: object) -> socket.socket:
    """The socket under an attached exec's stream (the SDK wraps it in a ``SocketIO``), to read and write
    the exec's multiplexed frames directly.

    Raises:
        SandboxError: The engine's transport gave no socket.
    """
    sock = getattr(attached, "_sock", attached)
    if not isinstance(sock, socket.socket):
        raise SandboxError(f"an attached exec gave a {type(attached).__name__}, not a socket (unsupported Docker "
                           "transport)")
    return sock


class _Dead(Exception):
    """The exec server's stream ended."""


class _Late(Exception):
    """No reply before the host-side deadline."""


Reply = tuple[bytes, "dict[str, Any] | None", bytes]
"""One reply of the exec server: its kind, its meta (a JSON object) and its data."""


class _Channel:
    """One exec server behind one attached exec socket; many requests may be in flight at once.

    The reader refuses anything out of protocol (unknown frame kinds, oversized frames, replies to requests
    never made, more data than a request's budget): it records why in ``violation`` and ends the channel.
    """

    def __init__(self, api: APIClient, container_id: str, user: str, drop_caps: list[int], workdir: str) -> None:
        import docker.errors

        self.api = api
        try:
            exec_id: str = api.exec_create(container_id, [*_SERVER_ARGV, user, *map(str, drop_caps)], stdin=True,
                                      stdout=True, stderr=True, user="0:0", workdir=workdir)["Id"]
            sock = api.exec_start(exec_id, socket=True)
        except docker.errors.APIError as e:
            raise _Dead(str(e.explanation or e)) from None
        self.sock = attached_socket(sock)
        self.sock.settimeout(None)
        self.exec_id = exec_id
        self._send_lock = threading.Lock()
        self._pending: dict[int, queue.SimpleQueue[Reply | None]] = {}
        self._budget: dict[int, int] = {}
        self._rid = 0
        self._rid_lock = threading.Lock()
        self.dead = False
        self.violation: str | None = None
        self.stderr = bytearray()
        self._head = bytearray()  # the first bytes of its stdout: the engine's error when the server never ran
        self._ready: queue.SimpleQueue[Reply | None] = queue.SimpleQueue()
        self._pending[0] = self._ready
        threading.Thread(target=self._reader, name="lab-sandbox-reader", daemon=True).start()
        try:
            item = self._ready.get(timeout=_START_TIMEOUT)
        except queue.Empty:
            item = None
        if item is None or item[0] != b"R":
            self.close()
            said = bytes(self.stderr[-2000:] or self._head).decode("utf-8", "replace").strip()
            raise _Dead(said or self.violation or "the exec server did not start")
        self._pending.pop(0, None)
        self.info: dict[str, Any] = item[1] or {}

    def _recv_exact(self, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(min(n - len(buf), 1 << 16))
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _violate(self, why: str) -> None:
        self.violation = f"exec channel out of protocol: {why}"

    def _reader(self) -> None:
        buf = bytearray()
        hsize = exec_server.HEADER.size
        try:
            while self.violation is None:
                head = self._recv_exact(_DOCKER_FRAME.size)
                if head is None:
                    break
                stream, length = _DOCKER_FRAME.unpack(head)
                if stream not in (1, 2) or length > _DOCKER_FRAME_MAX:
                    self._violate(f"stream frame {stream} of {length} bytes")
                    break
                payload = self._recv_exact(length) if length else b""
                if payload is None:
                    break
                if stream == 2:
                    self.stderr += payload
                    del self.stderr[:-8192]
                    continue
                buf += payload
                if len(self._head) < 500:
                    self._head += payload[:500]
                while len(buf) >= hsize and self.violation is None:
                    rid, kind, mlen, dlen = exec_server.HEADER.unpack_from(buf)
                    if kind not in _REPLY_KINDS or mlen > exec_server.MAX_META or dlen > exec_server.MAX_DATA:
                        self._violate(f"frame {kind!r} with {mlen} + {dlen} bytes")
                        break
                    if rid > self._rid:
                        self._violate(f"reply to request {rid}, never made")
                        break
                    end = hsize + mlen + dlen
                    if len(buf) < end:
                        break
                    try:
                        meta = json.loads(bytes(buf[hsize:hsize + mlen])) if mlen else None
                        readable = meta is None or isinstance(meta, dict)  # a JSON object, or none
                    except ValueError:
                        readable = False
                    if not readable:
                        self._violate(f"unreadable meta in a {kind!r} frame")
                        break
                    data = bytes(buf[hsize + mlen:end])
                    del buf[:end]
                    if kind in (b"O", b"E", b"d") and rid in self._budget:
                        self._budget[rid] -= dlen
                        if self._budget[rid] < 0:
                            self._violate(f"request {rid} got more data than its limit")
                            break
                    q = self._pending.get(rid)
                    if q is not None:  # else a late reply to a request given up on
                        q.put((kind, meta, data))
        finally:
            self.dead = True
            for q in list(self._pending.values()):
                q.put(None)
            self.close()

    def request(self, kind: bytes, meta: dict[str, Any], data: bytes = b"",
                budget: int = 0) -> tuple[int, queue.SimpleQueue[Reply | None]]:
        """Send one request; replies arrive on the returned queue (``None`` when the channel ended).
        ``budget`` is the most data bytes its replies may carry."""
        with self._rid_lock:
            self._rid += 1
            rid = self._rid
        q: queue.SimpleQueue[Reply | None] = queue.SimpleQueue()
        self._pending[rid] = q
        self._budget[rid] = budget
        m = json.dumps(meta).encode()
        try:
            with self._send_lock:
                self.sock.sendall(exec_server.HEADER.pack(rid, kind, len(m), len(data)) + m)
                if data:
                    self.sock.sendall(data)
        except OSError:
            self.dead = True
            q.put(None)
        if self.dead:
            q.put(None)
        return rid, q

    @staticmethod
    def get(q: queue.SimpleQueue[Reply | None], deadline: float | None) -> Reply | None:
        """The next reply, or ``None`` when the channel ended; :class:`_Late` past ``deadline``."""
        try:
            return q.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise _Late from None

    def done(self, rid: int) -> None:
        """Forget request ``rid`` (its late replies are dropped)."""
        self._pending.pop(rid, None)
        self._budget.pop(rid, None)

    def kill(self, rid: int) -> None:
        """Kill everything request ``rid`` started (no reply)."""
        m = json.dumps({"rid": rid}).encode()
        try:
            with self._send_lock:
                self.sock.sendall(exec_server.HEADER.pack(0, b"K", len(m), 0) + m)
        except OSError:
            pass

    def close(self) -> None:
        """End the channel (the exec server exits when its input closes)."""
        self.dead = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def _os_error(meta: dict[str, Any], path: str, spec: SandboxSpec) -> Exception:
    code, msg = meta.get("code", "EIO"), meta.get("message", "")
    if code == "ENOSPC":
        return SandboxError(f"{path}: no space left in the sandbox (its workdir holds work_size={spec.work_size}; "
                            f"raise SandboxSpec.work_size for more): {msg}")
    if code == "EUSER":
        return SandboxError(f"cannot run as that user in the sandbox: {msg}")
    cls = _ERRORS.get(code)
    return cls(f"{msg} (in sandbox)") if cls else SandboxError(msg if path and path in msg else f"{path}: {msg}")


def _host_tool(name: str) -> str:
    """A system tool's path; also looks in the sbin directories a user's ``PATH`` often lacks."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])) or name


def _run_host(argv: list[str], what: str) -> str:
    argv = [_host_tool(argv[0]), *argv[1:]]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SandboxError(f"{what}: {e}") from None
    if r.returncode != 0:
        raise SandboxError(f"{what}: {' '.join(argv[:2])} failed: {(r.stderr or r.stdout).strip()[-300:]}")
    return r.stdout.strip()


class _WorkFs:
    """A size-limited ext4 filesystem for one container's workdir: a sparse image file on a loop device,
    handed to Docker as a ``local`` volume (so Docker seeds it from the image). The file is unlinked at once
    and the loop device set to detach itself when the container unmounts it: nothing is left behind."""

    def __init__(self, client: DockerClient, size: int, labels: dict[str, str], name: str) -> None:
        what = f"cannot make the sandbox's {size}-byte workdir (SandboxSpec.work_size; None runs without a limit)"
        if os.geteuid() != 0:
            raise SandboxError(f"{what}: it needs root on the Docker host (losetup)")
        if not os.environ.get("DOCKER_HOST", "unix://").startswith("unix://"):
            raise SandboxError(f"{what}: it needs the Docker engine on this machine, not at $DOCKER_HOST")
        from lab.sandbox.local import local_root

        directory = local_root().parent / "docker-workdirs"
        directory.mkdir(parents=True, exist_ok=True)
        fd, path = tempfile.mkstemp(prefix="work-", suffix=".img", dir=directory)
        self.loop: str | None = None
        try:
            os.ftruncate(fd, size)
            os.close(fd)
            _run_host(["mkfs.ext4", "-q", "-F", "-m", "0", "-O", "^has_journal", "-E", "root_owner=0:0", path], what)
            _run_host(["debugfs", "-w", "-R", "rmdir lost+found", path], what)
            self.loop = _run_host(["losetup", "--find", "--show", path], what)
        finally:
            os.unlink(path)
        try:
            self.volume: str = client.volumes.create(name=name, driver="local", labels=labels, driver_opts={
                "type": "ext4", "device": self.loop, "o": "nosuid,nodev"}).name
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Detach the loop device (at once when unused, else as soon as its container unmounts it)."""
        if self.loop is not None:
            subprocess.run([_host_tool("losetup"), "--detach", self.loop], capture_output=True)
            self.loop = None


@SANDBOX_BACKENDS.register("docker")
class DockerSandbox(BaseSandbox):
    """A sandbox in a hardened Docker container. Open it with :func:`lab.sandbox.open_sandbox`."""

    backend = "docker"

    def __init__(self, spec: SandboxSpec, *, recorder: RunRecorder | None = None, run_id: str | None = None) -> None:
        super().__init__(spec, recorder=recorder, run_id=run_id)
        self.client = docker_client()
        gc_docker_once_in_background(self.client)
        self.labels = {**spec.labels, **owner_labels(self.id, self.run_id)}
        self._chan: _Channel | None = None
        self._chan_lock = threading.Lock()
        self._snapshots: list[str] = []
        self._removals: list[threading.Thread] = []
        self._broken: str | None = None
        self.container: Container | None = None
        self._generation = 0
        self.user = spec.user or self._default_user(spec.image)
        try:
            self._start(spec.image)
        except BaseException:
            self.close()
            raise

    # -- start and stop -------------------------------------------------------------------------

    @property
    def container_id(self) -> str:
        """The id of the sandbox's current container (a restore replaces it).

        Raises:
            SandboxUnavailable: The container never started.
        """
        cid: str | None = self.container.id if self.container is not None else None
        if cid is None:
            raise SandboxUnavailable(f"sandbox {self.id} has no container")
        return cid

    @staticmethod
    def _missing(name: str) -> SandboxError:
        hint = (f"run `lab sandbox build {name.split('/', 1)[1].split(':')[0]}`" if name.startswith("expertlab/")
                else f"pull or build {name} first")
        return SandboxError(f"sandbox image {name!r} not found: {hint}")

    def _default_user(self, name: str) -> str:
        """The image's user, or uid 1000 where that is root (looked up once per image name and process)."""
        import docker.errors

        user: str | None = _image_users.get(name)
        if user is None:
            try:
                user = (self.client.images.get(name).attrs.get("Config") or {}).get("User") or ""
            except docker.errors.ImageNotFound:
                raise self._missing(name) from None
            if user.split(":")[0] in ("", "root", "0"):
                user = "1000:1000"  # never root by default
            _image_users[name] = user
        return user

    def _container_args(self, image: str, volume: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Arguments of ``create_container`` and of its host config (the hardened defaults, spec overrides).
        The container runs as root holding only the exec server's capabilities (and the spec's)."""
        from docker.types import DeviceRequest, Mount

        spec = self.spec
        create = dict(image=image, command=["sleep", "infinity"], name=self.name, labels=self.labels,
                      user="0:0", working_dir=spec.workdir, environment=spec.env, hostname="sandbox")
        host: dict[str, Any] = dict(
            init=True, cap_drop=["ALL"], cap_add=sorted({*spec.cap_add, *_SERVER_CAPS}),
            security_opt=["no-new-privileges"], read_only=spec.read_only_root,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={spec.tmp_size},mode=1777"},
            mounts=[Mount(spec.workdir, volume, type="volume", labels=None if volume else self.labels)],
            mem_limit=spec.memory, memswap_limit=spec.memory, nano_cpus=int(spec.cpus * 1e9),
            pids_limit=spec.pids_limit, network_mode="none" if not spec.network else self._network_mode(),
        )
        if spec.gpus is not None:
            host["device_requests"] = [DeviceRequest(count=-1 if spec.gpus == "all" else spec.gpus,
                                                     capabilities=[["gpu"]])]
        return create, host

    def _network_mode(self) -> str:
        if not self.client.networks.list(names=["bridge"]):
            raise SandboxError("SandboxSpec(network=True) needs the Docker engine's bridge network, and this engine "
                               "has none (dockerd runs with --bridge=none?); refusing rather than sharing the "
                               "host's network. Enable the bridge, or run the task with network=False")
        return "bridge"

    def _start(self, image: str) -> None:
        import docker.errors

        from lab.sandbox.spec import parse_size

        self._generation += 1
        self.name = f"expertlab-{self.id}-{self._generation}"
        api = self.client.api
        workfs = _WorkFs(self.client, parse_size(self.spec.work_size), self.labels, self.name) \
            if self.spec.work_size else None
        try:
            create, host = self._container_args(image, workfs.volume if workfs else None)
            cid: str = api.create_container(**create, host_config=api.create_host_config(**host))["Id"]
            self.container = self.client.containers.prepare_model({"Id": cid, "Name": self.name})
            api.start(cid)
        except docker.errors.ImageNotFound:
            _image_users.pop(image, None)
            raise self._missing(image) from None
        except docker.errors.APIError as e:
            raise SandboxError(f"cannot start a sandbox from {self.spec.image!r}: {e.explanation or e}") from e
        finally:
            if workfs is not None:
                workfs.release()
        if not self._exec(["test", "-w", self.spec.workdir], b"", None, {}, None, 60).ok:
            raise SandboxError(f"workdir {self.spec.workdir} is not writable by user {self.user} "
                               f"in image {self.spec.image!r}: the image must create it owned by that user "
                               "(see sandboxes/README.md)")

    def _channel(self) -> _Channel:
        if self._broken:
            raise SandboxUnavailable(f"sandbox {self.id} is broken: {self._broken}")
        with self._chan_lock:
            chan = self._chan
            if chan is None or chan.dead:
                if chan is not None:
                    chan.close()
                    if chan.violation:
                        raise self._break(chan.violation)
                drop = [n for name, n in _SERVER_CAPS.items() if name not in self.spec.cap_add]
                try:
                    chan = _Channel(self.client.api, self.container_id, self.user, drop, self.spec.workdir)
                except _Dead as e:
                    self._unavailable_if_dead()
                    raise SandboxError(f"the exec server cannot start in image {self.spec.image!r} ({e}); the image "
                                       "needs python3 3.9 or newer with ctypes (see sandboxes/README.md)") from None
                self._chan = chan
            return chan

    def _break(self, why: str) -> SandboxUnavailable:
        """Mark the sandbox broken (every later operation fails at once) and say why."""
        self._broken = why
        if self._chan is not None:
            self._chan.close()
        return SandboxUnavailable(f"sandbox {self.id} is broken: {why}")

    def _close_channel(self) -> None:
        with self._chan_lock:
            if self._chan is not None:
                self._chan.close()
            self._chan = None

    def _remove_container(self, container: Container) -> None:
        import docker.errors

        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            if "already in progress" not in str(e):
                raise

    def _remove_later(self, container: Container) -> None:
        """Remove a container off the caller's path (``close`` waits for it)."""
        t = threading.Thread(target=self._remove_container, args=(container,), name="lab-sandbox-rm", daemon=True)
        t.start()
        self._removals.append(t)

    def _close(self) -> None:
        import docker.errors

        self._close_channel()
        for t in self._removals:
            t.join()
        if self.container is not None:
            self._remove_container(self.container)
        for volume in self.client.volumes.list(filters={"label": f"{LABEL}={self.id}"}):
            try:  # the workdirs of this and earlier generations, and any left by a removal from outside
                volume.remove(force=True)
            except docker.errors.APIError:
                pass
        for ref in self._snapshots:
            try:
                self.client.images.remove(ref, force=True)
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError:
                pass  # in use by another sandbox restored from it; gc removes it once this process is gone
        self._snapshots.clear()

    def _unavailable_if_dead(self) -> None:
        """Raise SandboxUnavailable (with the reason) when the container is no longer running."""
        import docker.errors

        container = self.container
        if container is None:
            raise SandboxUnavailable(f"sandbox {self.id} has no container")
        try:
            container.reload()
        except docker.errors.NotFound:
            raise SandboxUnavailable(f"sandbox {self.id}: its container was removed from outside") from None
        except docker.errors.DockerException as e:
            raise SandboxUnavailable(f"sandbox {self.id}: Docker engine unreachable ({e})") from e
        state: dict[str, Any] = container.attrs.get("State", {})
        if state.get("Status") != "running":
            why = "OOM-killed" if state.get("OOMKilled") else f"exited with code {state.get('ExitCode')}"
            raise SandboxUnavailable(f"sandbox {self.id} died: container {why}"
                                     + (f" ({state['Error']})" if state.get("Error") else ""))

    def _lost(self, chan: _Channel, what: str) -> SandboxError:
        if chan.violation:
            return self._break(chan.violation)
        if self._broken:
            return SandboxUnavailable(f"sandbox {self.id} is broken: {self._broken}")
        for _ in range(5):  # the engine may take a moment to notice a killed container
            self._unavailable_if_dead()
            time.sleep(0.1)
        return SandboxError(f"sandbox {self.id}: the exec server stopped during {what} "
                            "(killed by a root command or the OOM killer?); it restarts for the next command")

    # -- exec -----------------------------------------------------------------------------------

    def _path(self, path: str) -> str:
        return str(PurePosixPath(self.spec.workdir) / path)

    def _exec(self, argv: list[str], input: bytes, cwd: str | None, env: dict[str, str], user: str | None,
              timeout: float | None) -> ExecResult:
        out, err = bytearray(), bytearray()
        res: CommandResult | None = None
        for kind, payload in self._run(argv, input, cwd, env, user, timeout):
            if isinstance(payload, bytes):
                (out if kind == "stdout" else err).extend(payload)
            else:
                res = payload
        if res is None:  # _run returns only after the exit record, or raises
            raise SandboxError(f"sandbox {self.id}: no exit record for `{' '.join(argv)[:200]}`")
        return make_result(res, bytes(out), bytes(err))

    def _run(self, argv: list[str], input: bytes, cwd: str | None, env: dict[str, str], user: str | None,
             timeout: float | None) -> Iterator[tuple[str, bytes | CommandResult]]:
        """Run a command on the exec server: ``("stdout"|"stderr", chunk)`` as output arrives, then
        ``("exit", result)``; abandoning the iterator early kills the command."""
        chan = self._channel()
        meta = {"argv": argv, "cwd": self._path(cwd) if cwd else None, "env": env, "timeout": timeout,
                "cap": self.spec.output_cap, "user": user}
        rid, q = chan.request(b"X", meta, input, budget=2 * self.spec.output_cap)
        deadline = None if timeout is None else time.monotonic() + timeout + DEADLINE_GRACE
        finished = False
        what = f"`{' '.join(argv)[:200]}`"
        try:
            while True:
                try:
                    item = chan.get(q, deadline)
                except _Late:
                    raise self._break(f"no reply to {what} within its timeout of {timeout} s and "
                                      f"{DEADLINE_GRACE} s of grace") from None
                if item is None:
                    raise self._lost(chan, what)
                kind, rmeta, data = item
                if kind == b"O":
                    yield "stdout", data
                elif kind == b"E":
                    yield "stderr", data
                elif kind == b"x":
                    finished = True
                    yield "exit", self._exit_meta(rmeta, what)
                    return
                elif kind == b"!":
                    finished = True
                    raise _os_error(rmeta or {}, cwd or "", self.spec)
                else:
                    raise self._break(f"a {kind!r} frame in reply to {what}")
        finally:
            if not finished:
                chan.kill(rid)  # interrupted (Ctrl-C) or the stream was abandoned
            chan.done(rid)

    def _exit_meta(self, meta: dict[str, Any] | None, what: str) -> CommandResult:
        if meta is not None:
            try:
                return {"exit_code": int(meta["exit_code"]), "timed_out": bool(meta["timed_out"]),
                        "truncated": bool(meta["truncated"]), "duration": float(meta["duration"])}
            except (TypeError, KeyError, ValueError):  # a field missing or not a number
                pass
        raise self._break(f"a malformed exit record for {what}")

    def _exec_stream(self, argv: list[str], cwd: str | None, env: dict[str, str],
                     timeout: float | None) -> Iterator[tuple[str, bytes]]:
        for kind, payload in self._run(argv, b"", cwd, env, None, timeout):
            if isinstance(payload, bytes):
                yield kind, payload
            else:
                yield "exit", str(payload["exit_code"]).encode()

    # -- files ----------------------------------------------------------------------------------

    def _file_call(self, kind: bytes, meta: dict[str, Any], data: bytes, path: str, budget: int = 0) -> bytes:
        chan = self._channel()
        rid, q = chan.request(kind, meta, data, budget=budget)
        deadline = time.monotonic() + FILE_DEADLINE
        out = bytearray()
        try:
            while True:
                try:
                    item = chan.get(q, deadline)
                except _Late:
                    raise self._break(f"no reply to a file operation on {path} within {FILE_DEADLINE} s") from None
                if item is None:
                    raise self._lost(chan, f"a file operation on {path}")
                reply, rmeta, rdata = item
                if reply == b"d":
                    out += rdata
                elif reply == b"k":
                    return bytes(out)
                elif reply == b"!":
                    raise _os_error(rmeta or {}, path, self.spec)
                else:
                    raise self._break(f"a {reply!r} frame in reply to a file operation on {path}")
        finally:
            chan.done(rid)

    def _read_file(self, path: str) -> bytes:
        full, cap = self._path(path), self.spec.read_file_cap
        return self._file_call(b"r", {"path": full, "cap": cap}, b"", full, budget=cap)

    def _write_file(self, path: str, data: bytes) -> None:
        full = self._path(path)
        self._file_call(b"w", {"path": full}, data, full)

    def _copy_in(self, local_dir: Path, dest: str) -> None:
        root = local_dir.resolve()
        for link in (p for p in local_dir.rglob("*") if p.is_symlink()):
            target = os.path.realpath(link)
            if os.readlink(link).startswith("/") or not (target == str(root) or target.startswith(f"{root}/")):
                raise SandboxError(f"copy_in: {link} is a link to {os.readlink(link)!r}, outside {local_dir}; "
                                   "only links that stay inside the directory are copied")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for child in sorted(local_dir.iterdir()):
                tar.add(child, arcname=child.name)
        full = self._path(dest)
        self._file_call(b"t", {"dest": full}, buf.getvalue(), full)

    def _archive(self, path: str) -> Generator[bytes, None, None]:
        """The tar of ``path`` in the container, streamed from the engine 64 KiB at a time; closing the
        iterator (or dropping it) closes the response, so a refused archive is never read to its end."""
        import docker.errors

        api = self.client.api  # get_archive's own stream cannot be closed early; same request, kept closable
        res = api._get(api._url("/containers/{0}/archive", self.container_id), params={"path": path},
                       stream=True, headers={"Accept-Encoding": "identity"})
        try:
            api._raise_for_status(res)
        except docker.errors.NotFound:
            res.close()
            self._unavailable_if_dead()
            raise FileNotFoundError(f"{path}: no such file or directory (in sandbox)") from None
        except BaseException:
            res.close()
            raise

        def chunks() -> Generator[bytes, None, None]:
            try:
                yield from res.iter_content(1 << 16, False)
            finally:
                res.close()

        return chunks()

    def _copy_out(self, src: str, local_dir: Path) -> None:
        if self._broken:
            raise SandboxUnavailable(f"sandbox {self.id} is broken: {self._broken}")
        full = self._path(src)
        chunks = self._archive(full)
        try:
            archive.extract(chunks, local_dir, max_bytes=self.spec.archive_cap,
                            what=f"copy_out of {full} (archive_cap={self.spec.archive_cap})")
        finally:
            chunks.close()

    # -- snapshots ------------------------------------------------------------------------------

    def _snapshot(self) -> SnapshotRef:
        """Commit the container (root filesystem changes, when writable) and stream the workdir's content
        (checked against ``archive_cap`` as it passes) into a stopped helper container that is committed as
        the snapshot."""
        import docker.errors

        if self._broken:
            raise SandboxUnavailable(f"sandbox {self.id} is broken: {self._broken}")
        api = self.client.api
        labels = {**self.labels, SNAPSHOT: "1"}
        tag = f"{self.id}-{len(self._snapshots)}"
        try:
            base = (api.inspect_container(self.container_id)["Image"] if self.spec.read_only_root
                    else api.commit(self.container_id)["Id"])
            tmp = api.create_container(base, command=["true"], labels=labels,
                                       host_config=api.create_host_config(network_mode="none"))["Id"]
            try:
                chunks = self._archive(self.spec.workdir)
                stream = archive.checked(chunks, max_bytes=self.spec.archive_cap,
                                         what=f"snapshot of {self.spec.workdir} (archive_cap={self.spec.archive_cap})")
                try:
                    api.put_archive(tmp, str(PurePosixPath(self.spec.workdir).parent), stream)
                except docker.errors.APIError as e:
                    raise SandboxError(f"snapshot of sandbox {self.id} failed: {e.explanation or e}") from None
                except Exception as e:  # noqa: BLE001 - the checked stream's refusal surfaces wrapped
                    cause: BaseException | None = e
                    while cause is not None and not isinstance(cause, archive.ArchiveRefused):
                        cause = cause.__cause__ or cause.__context__
                    if cause is not None:
                        raise cause from None
                    raise
                finally:
                    stream.close()
                    try:
                        chunks.close()
                    except ValueError:  # still being read by the checker; dropped with it
                        pass
                api.commit(tmp, repository="expertlab/snapshot", tag=tag)
            finally:
                self._remove_later(self.client.containers.prepare_model({"Id": tmp}))
        except docker.errors.NotFound:
            self._unavailable_if_dead()
            raise
        ref = f"expertlab/snapshot:{tag}"
        self._snapshots.append(ref)
        return SnapshotRef("docker", ref)

    def _restore(self, ref: SnapshotRef) -> None:
        import docker.errors

        if self._broken:
            raise SandboxUnavailable(f"sandbox {self.id} is broken: {self._broken}")
        try:
            image = self.client.images.get(ref.ref)
        except docker.errors.ImageNotFound:
            raise SandboxError(f"snapshot {ref.ref} no longer exists (its sandbox was closed)") from None
        old = self.container
        self._close_channel()
        self._start(image.id)
        if old is not None:
            self._remove_later(old)
