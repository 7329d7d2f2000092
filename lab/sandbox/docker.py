"""Docker backend: hardened containers driven through the ``docker`` SDK, with a resident exec server inside.

Each sandbox is one container (network none, cap-drop ALL, no-new-privileges, read-only root, limits, init)
whose workdir is an anonymous volume seeded from the image. Commands go to a small server
(:mod:`lab.sandbox.exec_server`) started once per user through one attached exec; it answers in well under a
millisecond, where a fresh ``exec`` costs tens. Images without ``python3`` fall back to one exec per command.
"""

from __future__ import annotations

import io
import json
import queue
import socket
import struct
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from lab.sandbox import exec_server
from lab.sandbox.base import ExecResult, SandboxError, SandboxUnavailable, SnapshotRef
from lab.sandbox.common import BaseSandbox, make_result
from lab.sandbox.factory import SANDBOX_BACKENDS
from lab.sandbox.gc import LABEL, SNAPSHOT, gc_docker_once_in_background, owner_labels
from lab.sandbox.spec import SandboxSpec
from lab.traces.recorder import RunRecorder

_SERVER_SOURCE = Path(exec_server.__file__).read_text()
_SERVER_ARGV = ["python3", "-I", "-S", "-c", _SERVER_SOURCE]
_DOCKER_FRAME = struct.Struct(">BxxxL")
_START_TIMEOUT = 20.0
_ERRORS: dict[str, type[OSError]] = {"ENOENT": FileNotFoundError, "EACCES": PermissionError,
                                     "EISDIR": IsADirectoryError}

_client = None
_client_lock = threading.Lock()
_image_users: dict[str, str] = {}


def docker_client():
    """The process's Docker client (one connection pool shared by all sandboxes).

    Raises:
        SandboxUnavailable: No Docker engine is reachable.
    """
    global _client
    with _client_lock:
        if _client is None:
            import docker

            try:
                c = docker.from_env(max_pool_size=64, timeout=120)
                c.ping()
            except Exception as e:  # noqa: BLE001 - any failure means no engine
                raise SandboxUnavailable(
                    f"no Docker engine reachable ({type(e).__name__}: {e}); start dockerd (scripts/machine.sh) "
                    "or use SandboxSpec(backend='local')") from e
            _client = c
        return _client


def _os_error(meta: dict[str, Any], path: str) -> Exception:
    code, msg = meta.get("code", "EIO"), meta.get("message", "")
    if code == "EFBIG":
        return SandboxError(f"{path}: {msg}")
    cls = _ERRORS.get(code)
    return cls(f"{msg} (in sandbox)") if cls else SandboxError(f"{path}: {msg}")


class _Dead(Exception):
    """The exec server's stream ended."""


class _Channel:
    """One exec server behind one attached exec socket; many requests may be in flight at once."""

    def __init__(self, api, container_id: str, user: str | None, workdir: str) -> None:
        import docker.errors

        self.api = api
        try:
            exec_id = api.exec_create(container_id, _SERVER_ARGV, stdin=True, stdout=True, stderr=True,
                                      user=user or "", workdir=workdir)["Id"]
            sock = api.exec_start(exec_id, socket=True)
        except docker.errors.APIError as e:
            raise _Dead(str(e.explanation or e)) from None
        self.sock: socket.socket = getattr(sock, "_sock", sock)
        self.sock.settimeout(None)
        self.exec_id = exec_id
        self._send_lock = threading.Lock()
        self._pending: dict[int, queue.SimpleQueue] = {}
        self._rid = 0
        self._rid_lock = threading.Lock()
        self.dead = False
        self.stderr = bytearray()
        self._ready: queue.SimpleQueue = queue.SimpleQueue()
        self._pending[0] = self._ready
        threading.Thread(target=self._reader, name="lab-sandbox-reader", daemon=True).start()
        item = self._ready_item()
        if item is None or item[0] != b"R":
            self.close()
            raise _Dead(bytes(self.stderr[-2000:]).decode("utf-8", "replace").strip() or "server did not start")
        self.info: dict[str, Any] = item[1]

    def _ready_item(self):
        try:
            return self._ready.get(timeout=_START_TIMEOUT)
        except queue.Empty:
            return None

    def _recv_exact(self, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            try:
                chunk = self.sock.recv(n - len(buf))
            except OSError:
                return None
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _reader(self) -> None:
        buf = bytearray()
        hsize = exec_server.HEADER.size
        try:
            while True:
                head = self._recv_exact(_DOCKER_FRAME.size)
                if head is None:
                    break
                stream, length = _DOCKER_FRAME.unpack(head)
                payload = self._recv_exact(length) if length else b""
                if payload is None:
                    break
                if stream == 2:
                    self.stderr += payload
                    del self.stderr[:-8192]
                    continue
                buf += payload
                while len(buf) >= hsize:
                    rid, kind, mlen, dlen = exec_server.HEADER.unpack_from(buf)
                    end = hsize + mlen + dlen
                    if len(buf) < end:
                        break
                    meta = json.loads(bytes(buf[hsize:hsize + mlen])) if mlen else None
                    data = bytes(buf[hsize + mlen:end])
                    del buf[:end]
                    q = self._pending.get(rid)
                    if q is not None:
                        q.put((kind, meta, data))
        finally:
            self.dead = True
            for q in list(self._pending.values()):
                q.put(None)

    def request(self, kind: bytes, meta: dict[str, Any], data: bytes = b"") -> tuple[int, queue.SimpleQueue]:
        """Send one request; replies arrive on the returned queue (``None`` when the server died)."""
        with self._rid_lock:
            self._rid += 1
            rid = self._rid
        q: queue.SimpleQueue = queue.SimpleQueue()
        self._pending[rid] = q
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

    def done(self, rid: int) -> None:
        self._pending.pop(rid, None)

    def kill(self, rid: int) -> None:
        """Kill the process group of request ``rid`` (no reply)."""
        m = json.dumps({"rid": rid}).encode()
        try:
            with self._send_lock:
                self.sock.sendall(exec_server.HEADER.pack(0, b"K", len(m), 0) + m)
        except OSError:
            pass

    def call(self, kind: bytes, meta: dict[str, Any], data: bytes = b"") -> tuple[bytes, Any, bytes]:
        """A request with exactly one reply."""
        rid, q = self.request(kind, meta, data)
        try:
            item = q.get()
        finally:
            self.done(rid)
        if item is None:
            raise _Dead("exec server stream ended")
        return item

    def close(self) -> None:
        self.dead = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


@SANDBOX_BACKENDS.register("docker")
class DockerSandbox(BaseSandbox):
    """A sandbox in a hardened Docker container. Open it with :func:`lab.sandbox.open_sandbox`."""

    backend = "docker"

    def __init__(self, spec: SandboxSpec, *, recorder: RunRecorder | None = None, run_id: str | None = None) -> None:
        super().__init__(spec, recorder=recorder, run_id=run_id)
        self.client = docker_client()
        gc_docker_once_in_background(self.client)
        self.labels = {**spec.labels, **owner_labels(self.id, self.run_id)}
        self._channels: dict[str | None, _Channel] = {}
        self._chan_lock = threading.Lock()
        self._snapshots: list[str] = []
        self._removals: list[threading.Thread] = []
        self._fallback = False  # True when the image cannot run the exec server
        self.container = None
        self._generation = 0
        self.user = spec.user or self._default_user(spec.image)
        try:
            self._start(spec.image)
        except BaseException:
            self.close()
            raise

    # -- start and stop -------------------------------------------------------------------------

    @staticmethod
    def _missing(name: str) -> SandboxError:
        hint = (f"run `lab sandbox build {name.split('/', 1)[1].split(':')[0]}`" if name.startswith("expertlab/")
                else f"pull or build {name} first")
        return SandboxError(f"sandbox image {name!r} not found: {hint}")

    def _default_user(self, name: str) -> str:
        """The image's user, or uid 1000 where that is root (looked up once per image name and process)."""
        import docker.errors

        user = _image_users.get(name)
        if user is None:
            try:
                user = (self.client.images.get(name).attrs.get("Config") or {}).get("User") or ""
            except docker.errors.ImageNotFound:
                raise self._missing(name) from None
            if user.split(":")[0] in ("", "root", "0"):
                user = "1000:1000"  # never root by default
            _image_users[name] = user
        return user

    def _container_args(self, image: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """Arguments of ``create_container`` and of its host config (the hardened defaults, spec overrides)."""
        from docker.types import DeviceRequest, Mount

        spec = self.spec
        create = dict(image=image, command=["sleep", "infinity"], name=self.name, labels=self.labels,
                      user=self.user, working_dir=spec.workdir, environment=spec.env, hostname="sandbox")
        host: dict[str, Any] = dict(
            init=True, cap_drop=["ALL"], cap_add=list(spec.cap_add) or None,
            security_opt=["no-new-privileges"], read_only=spec.read_only_root,
            tmpfs={"/tmp": f"rw,nosuid,nodev,size={spec.tmp_size},mode=1777"},
            mounts=[Mount(spec.workdir, None, type="volume", labels=self.labels)],
            mem_limit=spec.memory, memswap_limit=spec.memory, nano_cpus=int(spec.cpus * 1e9),
            pids_limit=spec.pids_limit, network_mode="none" if not spec.network else self._network_mode(),
        )
        if spec.gpus is not None:
            host["device_requests"] = [DeviceRequest(count=-1 if spec.gpus == "all" else spec.gpus,
                                                     capabilities=[["gpu"]])]
        return create, host

    def _network_mode(self) -> str:
        names = {n.name for n in self.client.networks.list()}
        return "bridge" if "bridge" in names else "host"

    def _start(self, image: str) -> None:
        import docker.errors

        self._generation += 1
        self.name = f"expertlab-{self.id}-{self._generation}"
        api = self.client.api
        create, host = self._container_args(image)
        try:
            cid = api.create_container(**create, host_config=api.create_host_config(**host))["Id"]
            self.container = self.client.containers.prepare_model({"Id": cid, "Name": self.name})
            api.start(cid)
        except docker.errors.ImageNotFound:
            _image_users.pop(image, None)
            raise self._missing(image) from None
        except docker.errors.APIError as e:
            raise SandboxError(f"cannot start a sandbox from {self.spec.image!r}: {e.explanation or e}") from e
        try:
            chan = self._channel(None)
        except _Dead as e:
            self._unavailable_if_dead()
            self._fallback = True
            self._fallback_reason = str(e)
            chan = None
        writable = chan.info["writable"] if chan else self._raw_exec(
            ["test", "-w", self.spec.workdir], b"", None, {}, None, 30)["exit_code"] == 0
        if not writable:
            raise SandboxError(f"workdir {self.spec.workdir} is not writable by user {self.user} "
                               f"in image {self.spec.image!r}: the image must create it owned by that user "
                               "(see sandboxes/README.md)")

    def _channel(self, user: str | None) -> _Channel:
        key = None if user is None or user == self.user else user
        with self._chan_lock:
            chan = self._channels.get(key)
            if chan is None or chan.dead:
                if chan is not None:
                    chan.close()
                chan = _Channel(self.client.api, self.container.id, key or self.user, self.spec.workdir)
                self._channels[key] = chan
            return chan

    def _close_channels(self) -> None:
        with self._chan_lock:
            for chan in self._channels.values():
                chan.close()
            self._channels.clear()

    def _remove_container(self, container) -> None:
        import docker.errors

        try:
            container.remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as e:
            if "already in progress" not in str(e):
                raise

    def _remove_later(self, container) -> None:
        """Remove a container off the caller's path (``close`` waits for it)."""
        t = threading.Thread(target=self._remove_container, args=(container,), name="lab-sandbox-rm", daemon=True)
        t.start()
        self._removals.append(t)

    def _close(self) -> None:
        import docker.errors

        self._close_channels()
        for t in self._removals:
            t.join()
        if self.container is not None:
            self._remove_container(self.container)
            for volume in self.client.volumes.list(filters={"label": f"{LABEL}={self.id}"}):
                try:  # left behind when the container was removed from outside without its volumes
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

        try:
            self.container.reload()
        except docker.errors.NotFound:
            raise SandboxUnavailable(f"sandbox {self.id}: its container was removed from outside") from None
        except docker.errors.DockerException as e:
            raise SandboxUnavailable(f"sandbox {self.id}: Docker engine unreachable ({e})") from e
        state = self.container.attrs.get("State", {})
        if state.get("Status") != "running":
            why = "OOM-killed" if state.get("OOMKilled") else f"exited with code {state.get('ExitCode')}"
            raise SandboxUnavailable(f"sandbox {self.id} died: container {why}"
                                     + (f" ({state['Error']})" if state.get("Error") else ""))

    def _lost(self, what: str) -> SandboxError:
        for _ in range(5):  # the engine may take a moment to notice a killed container
            self._unavailable_if_dead()
            time.sleep(0.1)
        return SandboxError(f"sandbox {self.id}: the exec server stopped during {what} "
                            "(killed from inside the sandbox?); it restarts for the next command")

    # -- exec -----------------------------------------------------------------------------------

    def _exec_meta(self, argv: list[str], cwd: str | None, env: dict[str, str], timeout: float | None) -> dict:
        return {"argv": argv, "cwd": self._path(cwd) if cwd else None, "env": env, "timeout": timeout,
                "cap": self.spec.output_cap}

    def _path(self, path: str) -> str:
        return str(PurePosixPath(self.spec.workdir) / path)

    def _exec(self, argv, input, cwd, env, user, timeout) -> ExecResult:
        if self._fallback:
            res = self._raw_exec(argv, input, cwd, env, user, timeout)
            return make_result(res, res.pop("stdout"), res.pop("stderr"))
        out, err = bytearray(), bytearray()
        res = None
        for kind, payload in self._run(argv, input, cwd, env, user, timeout):
            if kind == "stdout":
                out += payload
            elif kind == "stderr":
                err += payload
            else:
                res = payload
        return make_result(res, bytes(out), bytes(err))

    def _run(self, argv, input, cwd, env, user, timeout) -> Iterator[tuple[str, Any]]:
        try:
            chan = self._channel(user)
        except _Dead as e:
            self._unavailable_if_dead()
            raise SandboxError(f"cannot run as user {user!r} in sandbox {self.id}: {e}") from None
        rid, q = chan.request(b"X", self._exec_meta(argv, cwd, env, timeout), input)
        finished = False
        try:
            while True:
                item = q.get()
                if item is None:
                    raise self._lost(f"`{' '.join(argv)[:200]}`")
                kind, meta, data = item
                if kind == b"O":
                    yield "stdout", data
                elif kind == b"E":
                    yield "stderr", data
                elif kind == b"x":
                    finished = True
                    yield "exit", meta
                    return
                else:
                    finished = True
                    raise _os_error(meta or {}, cwd or "")
        finally:
            if not finished:
                chan.kill(rid)  # interrupted (Ctrl-C) or the stream was abandoned
            chan.done(rid)

    def _exec_stream(self, argv, cwd, env, timeout) -> Iterator[tuple[str, bytes]]:
        if self._fallback:
            res = self._raw_exec(argv, b"", cwd, env, None, timeout)
            yield from (("stdout", res["stdout"]), ("stderr", res["stderr"]))
            yield "exit", str(res["exit_code"]).encode()
            return
        for kind, payload in self._run(argv, b"", cwd, env, None, timeout):
            if kind == "exit":
                yield "exit", str(payload["exit_code"]).encode()
            else:
                yield kind, payload

    def _raw_exec(self, argv, input, cwd, env, user, timeout) -> dict[str, Any]:
        """One plain exec (for images without python3): ``timeout`` runs the command in a killed group."""
        api = self.client.api
        cmd = ["timeout", "-s", "KILL", f"{timeout}", *argv] if timeout else argv
        started = time.monotonic()
        exec_id = api.exec_create(self.container.id, cmd, stdin=True, stdout=True, stderr=True,
                                  user=user or "", workdir=self._path(cwd) if cwd else self.spec.workdir,
                                  environment=env or None)["Id"]
        raw = api.exec_start(exec_id, socket=True)
        sock = getattr(raw, "_sock", raw)
        out, err = bytearray(), bytearray()
        truncated = False
        try:
            if input:
                sock.sendall(input)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(None if timeout is None else timeout + 5)
            f = sock.makefile("rb")
            while True:
                head = f.read(_DOCKER_FRAME.size)
                if len(head) < _DOCKER_FRAME.size:
                    break
                stream, length = _DOCKER_FRAME.unpack(head)
                data = f.read(length)
                buf = out if stream == 1 else err
                room = self.spec.output_cap - len(buf)
                if len(data) > room:
                    truncated = True
                buf += data[:max(room, 0)]
        except TimeoutError:
            pass
        finally:
            sock.close()
        duration = time.monotonic() - started
        code = api.exec_inspect(exec_id).get("ExitCode")
        timed_out = bool(timeout) and (code in (137, None)) and duration >= timeout
        if code is None and not timed_out:
            self._unavailable_if_dead()
        return {"exit_code": -1 if timed_out else code, "timed_out": timed_out, "truncated": truncated,
                "duration": duration, "stdout": bytes(out), "stderr": bytes(err)}

    # -- files ----------------------------------------------------------------------------------

    def _file_call(self, kind: bytes, meta: dict[str, Any], data: bytes, path: str) -> bytes:
        try:
            chan = self._channel(None)
            reply, rmeta, rdata = chan.call(kind, meta, data)
        except _Dead:
            raise self._lost(f"a file operation on {path}") from None
        if reply == b"!":
            raise _os_error(rmeta or {}, path)
        return rdata

    def _fallback_shell(self, script: str, args: list[str], input: bytes = b"") -> bytes:
        res = self._raw_exec(["sh", "-c", script, "sh", *args], input, None, {}, None, 600)
        if res["exit_code"] != 0:
            msg = res["stderr"].decode("utf-8", "replace").strip()
            path = args[0] if args else ""
            if "No such file" in msg:
                raise FileNotFoundError(f"{path}: {msg}")
            if "Permission denied" in msg or "Read-only" in msg:
                raise PermissionError(f"{path}: {msg}")
            if "Is a directory" in msg:
                raise IsADirectoryError(f"{path}: {msg}")
            raise SandboxError(f"{path}: {msg or 'failed'}")
        return res["stdout"]

    def _read_file(self, path: str) -> bytes:
        full, cap = self._path(path), self.spec.read_file_cap
        if self._fallback:
            size = int(self._fallback_shell('stat -c %s "$1"', [full]) or 0)
            if size > cap:
                raise SandboxError(f"{full}: file is {size} bytes, over the read limit of {cap}")
            return self._fallback_shell('cat "$1"', [full])
        return self._file_call(b"r", {"path": full, "cap": cap}, b"", full)

    def _write_file(self, path: str, data: bytes) -> None:
        full = self._path(path)
        if self._fallback:
            self._fallback_shell('mkdir -p "$(dirname "$1")" && cat > "$1"', [full], data)
            return
        self._file_call(b"w", {"path": full}, data, full)

    def _copy_in(self, local_dir: Path, dest: str) -> None:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for child in sorted(local_dir.iterdir()):
                tar.add(child, arcname=child.name)
        full = self._path(dest)
        if self._fallback:
            self._fallback_shell('mkdir -p "$1" && tar -x -o -C "$1"', [full], buf.getvalue())
            return
        self._file_call(b"t", {"dest": full}, buf.getvalue(), full)

    def _copy_out(self, src: str, local_dir: Path) -> None:
        full = self._path(src)
        if self._fallback:
            p = PurePosixPath(full)
            data = self._fallback_shell('tar -c -C "$1" "$2"', [str(p.parent), p.name])
        else:
            data = self._file_call(b"T", {"path": full}, b"", full)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            tar.extractall(local_dir, filter="data")

    # -- snapshots ------------------------------------------------------------------------------

    def _snapshot(self) -> SnapshotRef:
        """Commit the container (root filesystem changes, when writable) and bake the workdir volume's
        content into the image, in a stopped helper container that is committed as the snapshot."""
        import docker.errors

        api = self.client.api
        labels = {**self.labels, SNAPSHOT: "1"}
        tag = f"{self.id}-{len(self._snapshots)}"
        try:
            bits, _ = api.get_archive(self.container.id, self.spec.workdir)
            archive = b"".join(bits)
            base = (api.inspect_container(self.container.id)["Image"] if self.spec.read_only_root
                    else api.commit(self.container.id)["Id"])
            tmp = api.create_container(base, command=["true"], labels=labels,
                                       host_config=api.create_host_config(network_mode="none"))["Id"]
            try:
                api.put_archive(tmp, str(PurePosixPath(self.spec.workdir).parent), archive)
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

        try:
            image = self.client.images.get(ref.ref)
        except docker.errors.ImageNotFound:
            raise SandboxError(f"snapshot {ref.ref} no longer exists (its sandbox was closed)") from None
        old = self.container
        self._close_channels()
        self._start(image.id)
        self._remove_later(old)
