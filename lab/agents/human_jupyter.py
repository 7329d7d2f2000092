"""A human expert's attempt in JupyterLab, on an IPython kernel inside the task's sandbox.

``lab human TASK --jupyter`` serves JupyterLab from this process on 127.0.0.1 with a token. Its only kernel
spec runs, through a kernel provisioner (:class:`SandboxProvisioner`), a :class:`lab.sandbox.kernel.SandboxKernel`
inside the task's sandbox: the same kernel and transport as the agents' ``kernel`` tool. The file browser
shows the host side of the sandbox's workdir (the Docker volume; what the server saves is handed to the
sandbox's user; links leading out of it are refused, though a link swapped in between the check and the use
is not). There are no other kernels. JupyterLab's terminals run an interactive shell inside the sandbox as its
user, hardened as the sandbox's commands are (:mod:`lab.sandbox.terminal`); each line typed there is recorded
as a ``human_action`` (``lab.action: terminal_input``) and what the terminal showed as ``terminal_output``.

An observer on the kernel's broadcast channel records every executed cell as a ``human_action`` event
(``lab.action: kernel_cell``) with the same ``lab.kernel.outputs`` the agent's ``kernel`` tool records, so
both compare alike. Line magics loaded in the kernel talk to this process: ``%pause`` / ``%resume`` stop and
restart the task clock (working time excludes pauses), ``%status``, ``%score [ANSWER]`` (intermediate, where
the task allows it), ``%submit ANSWER`` (scores and ends the session) and ``%quit``.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import hashlib
import json
import os
import secrets
import signal
import socket
import tempfile
import threading
import time
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_client.provisioning import KernelProvisionerBase

from lab.agents.human import HumanSession
from lab.agents.limits import record_limit
from lab.agents.run import RunResult, RunSandboxOpener
from lab.errors import LabError
from lab.sandbox.kernel import CellCollector, SandboxKernel
from lab.sandbox.terminal import shell_command
from lab.tools.submit import parse_answer
from lab.traces.schema import RunStatus

if TYPE_CHECKING:
    from jupyterlab.labapp import LabApp

    from lab.sandbox.base import Sandbox
    from lab.sandbox.docker import DockerSandbox
    from lab.tasks.model import Task
    from lab.traces.protocol import Store

KERNEL_NAME = "lab-sandbox"
NOTEBOOK = "notebook.ipynb"
MAGICS = ("pause", "resume", "status", "score", "submit", "quit")
_REPLIES = "/tmp/.lab-kernel"
TERMINAL_SNAPSHOT_S = 5.0
"""Seconds between workdir archives while terminals show output (cells archive it after each one)."""

# Runs silently in every kernel of the session: each magic waits for this process's reply to its cell.
_MAGIC_CODE = f"""
def _lab_magics():
    import hashlib, json, os, time
    from IPython.core.magic import register_line_magic

    def wait(name):
        parent = get_ipython().kernel.get_parent("shell")  # the cell's request: the lab replies to its id
        path = f"{_REPLIES}/reply-{{hashlib.sha1(parent['header']['msg_id'].encode()).hexdigest()}}.json"
        end = time.monotonic() + 600
        while time.monotonic() < end:
            if os.path.exists(path):
                with open(path) as f:
                    print(json.load(f)["message"])
                return
            time.sleep(0.05)
        print(f"%{{name}}: no reply from the lab")

    for name in {MAGICS!r}:
        register_line_magic(name)(lambda line, _name=name: wait(_name))

_lab_magics()
del _lab_magics
"""

_session: JupyterHumanSession | None = None


class SandboxProvisioner(KernelProvisionerBase):  # type: ignore[misc]
    """Kernel provisioner of the session's kernel spec: the kernel runs inside the session's sandbox."""

    _launched = False

    @staticmethod
    def _kernel() -> SandboxKernel:
        if _session is None:
            raise LabError("no human Jupyter session is running in this process")
        return _session.kernel

    @property
    def has_process(self) -> bool:
        """Whether the sandbox's kernel was launched (and not cleaned up since)."""
        return self._launched

    async def poll(self) -> int | None:
        """``None`` while the kernel runs, else its exit code."""
        k = self._kernel()
        return None if k.alive else (k.exit_code if k.exit_code is not None else 1)

    async def wait(self) -> int | None:
        """Wait for the kernel to exit; its exit code."""
        while (code := await self.poll()) is None:
            await asyncio.sleep(0.1)
        return code

    async def send_signal(self, signum: int) -> None:
        """SIGINT interrupts the running cell; any other signal kills the kernel."""
        if signum == signal.SIGINT:
            self._kernel().interrupt()
        else:
            await self.kill()

    async def kill(self, restart: bool = False) -> None:
        """Kill the kernel's process in the sandbox."""
        await asyncio.get_running_loop().run_in_executor(None, self._kernel()._kill)

    async def terminate(self, restart: bool = False) -> None:
        """Kill the kernel (it holds nothing to flush)."""
        await self.kill(restart)

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        """The launch arguments, with a placeholder command (the kernel starts in the sandbox, not here)."""
        kwargs = await super().pre_launch(**kwargs)
        kwargs["cmd"] = ["(the task's sandbox)"]
        return kwargs

    # jupyter_client types the connection info as a TypedDict whose "key" is str, but its kernel manager takes the
    # key as bytes too (load_connection_info), which is how it is handed over here: the stubs are too narrow
    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        """Start the kernel in the sandbox; its connection info (the key as bytes)."""
        k = self._kernel()
        await asyncio.get_running_loop().run_in_executor(None, k.start)
        self._launched = True
        info: dict[str, Any] = dict(k.connection_info or {})
        info["key"] = info["key"].encode()
        self.connection_info = info  # type: ignore[assignment]  # see launch_kernel's comment
        return info

    async def cleanup(self, restart: bool = False) -> None:
        """Mark the kernel gone unless it is being restarted."""
        if not restart:
            self._launched = False


def _register_provisioner() -> None:
    from jupyter_client.provisioning.factory import KernelProvisionerFactory

    KernelProvisionerFactory.provisioners[KERNEL_NAME] = EntryPoint(
        name=KERNEL_NAME, value=f"{__name__}:SandboxProvisioner", group=KernelProvisionerFactory.GROUP_NAME)


def host_workdir(sandbox: Sandbox | None) -> Path:
    """The host side of a Docker sandbox's workdir (its volume's mount point), for the file browser.

    Raises:
        LabError: Not a Docker sandbox, or the engine's volumes are not readable here (a remote engine).
    """
    from lab.sandbox.docker import DockerSandbox

    if not isinstance(sandbox, DockerSandbox):
        raise LabError("--jupyter needs a Docker sandbox (--backend docker)")
    container = sandbox.container
    if container is None:
        raise LabError(f"sandbox {sandbox.id} has no container (it was closed)")
    for m in sandbox.client.api.inspect_container(container.id).get("Mounts", []):
        if m.get("Destination") == sandbox.workdir and m.get("Source"):
            path = Path(m["Source"])
            if path.is_dir() and os.access(path, os.R_OK | os.W_OK):
                return path
            raise LabError(f"the sandbox's workdir volume ({path}) is not readable and writable here: --jupyter needs "
                           "the Docker engine on this machine and root")
    raise LabError(f"sandbox {sandbox.id} has no volume at its workdir {sandbox.workdir}")


def _workdir_contents_class() -> type:
    """JupyterLab's file manager confined to the workdir's real path: the workdir belongs to the sandbox, so a
    link planted there (``ln -s / rootfs``) would otherwise lead this host process (root) anywhere on the host."""
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
    from tornado.web import HTTPError

    listing: contextvars.ContextVar[bool] = contextvars.ContextVar("listing", default=False)

    class WorkdirContents(AsyncLargeFileManager):
        def _get_os_path(self, path: str) -> str:
            os_path = super()._get_os_path(path)
            root, real = os.path.realpath(self.root_dir), os.path.realpath(os_path)
            if real != root and not real.startswith(root + os.sep):
                if listing.get():  # a directory listing skips the entry (as it skips a link loop)
                    raise OSError(errno.ELOOP, f"{path} leads outside the sandbox's workdir")
                raise HTTPError(404, f"{path} leads outside the sandbox's workdir")
            return os_path

        async def _dir_model(self, path: str, content: bool = True) -> dict:
            token = listing.set(content)
            try:
                return await super()._dir_model(path, content)
            finally:
                listing.reset(token)

    return WorkdirContents


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterHumanSession(HumanSession):
    """One human expert's attempt in JupyterLab (see the module doc).

    Args:
        store: The trace store.
        task: The task; it needs a Docker sandbox.
        expert: Who is working.
        sandbox: The sandbox, or a function of the run's recorder opening it.
        port: JupyterLab's port on 127.0.0.1 (0: a free one).
        token: Its access token (default: a random one).
        idle_pause_s: Seconds with no cell running after which the clock pauses by itself (recorded as a
            ``pause`` with reason ``idle``); the next cell resumes it. ``None``: only ``%pause`` pauses.
        **kwargs: Passed to :class:`HumanSession` (``limits``, ``stdout``, ``resume``).
    """

    sandbox: DockerSandbox  # host_workdir refuses any other kind in __init__

    def __init__(self, store: Store, task: Task, *, expert: str, sandbox: Sandbox | RunSandboxOpener | None,
                 port: int = 0,
                 token: str | None = None, idle_pause_s: float | None = 900.0, **kwargs: Any) -> None:
        if sandbox is None:
            raise LabError(f"task {task.key} has no sandbox: --jupyter needs one")
        super().__init__(store, task, expert=expert, sandbox=sandbox, **kwargs)
        try:
            self.workdir = host_workdir(self.sandbox)
        except LabError as e:
            self._finish(RunStatus.FAILED, "error", str(e))
            if self.sandbox is not None:
                self.sandbox.close()
            raise
        self.kernel = SandboxKernel(self.sandbox)
        self.kernel.setup_code = _MAGIC_CODE
        self.port = port or _free_port()
        self.token = token or secrets.token_urlsafe(24)
        self.idle_pause_s = idle_pause_s
        self._last_active = time.monotonic()
        self._idle_paused = False
        self.result: RunResult | None = None
        self._server: LabApp | None = None
        self._ending: tuple[RunStatus, str, Any] | None = None
        self._observer: threading.Thread | None = None
        self._done: dict[str, str] = {}  # request id -> the recorded cell's text, or the magic's reply
        self._done_cv = threading.Condition()
        self.terminal_log: Path | None = None  # what the terminals' relays log (see lab.sandbox.terminal)
        self._terminal_read = 0
        self._terminal_snapshot_due = False
        self._snapshot_at = 0.0

    @property
    def url(self) -> str:
        """JupyterLab's address, token included, opening the session's notebook."""
        return f"http://127.0.0.1:{self.port}/lab/tree/{NOTEBOOK}?token={self.token}"

    # -- serving ----------------------------------------------------------------------------------

    def run(self) -> RunResult:
        """Serve JupyterLab until ``%submit``, ``%quit``, the time budget or Ctrl-C; then finish the run."""
        global _session
        if _session is not None:
            raise LabError("a human Jupyter session already runs in this process")
        _session = self
        tmp = tempfile.TemporaryDirectory(prefix="lab-jupyter-")
        try:
            self._write_notebook()
            self.terminal_log = Path(tmp.name) / "terminals.jsonl"
            self._server = self._make_server(Path(tmp.name))
            self._start_observer()
            self._print(f"Task {self.task.key} (run {self.run_id})\n\n{self.task.instructions}\n")
            self._print(f"JupyterLab: {self.url}")
            self._print("In the notebook: %pause / %resume, %status, %score [ANSWER], %submit ANSWER, %quit")
            try:
                self._server.start()
            except KeyboardInterrupt:
                self._ending = self._ending or (RunStatus.INTERRUPTED, "keyboard_interrupt", None)
        except Exception as e:
            self.recorder.error(e, where="human jupyter session")
            self._ending = (RunStatus.FAILED, "error", f"{type(e).__name__}: {e}")
        finally:
            _session = None
            self.kernel.shutdown()
            if self._server is not None:
                from jupyter_server.serverapp import ServerApp

                ServerApp.clear_instance()
            tmp.cleanup()
        if self.result is None:
            status, reason, extra = self._ending or (RunStatus.CANCELLED, "server_stopped", None)
            self.result = self._finish(status, reason, error=extra if status is RunStatus.FAILED else None)
        return self.result

    def _write_notebook(self) -> None:
        path = f"{self.sandbox.workdir.rstrip('/')}/{NOTEBOOK}"
        try:
            self.sandbox.read_file(path)
            return  # keep the expert's notebook (a resumed session)
        except FileNotFoundError:
            pass
        nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": [
            f"**{self.task.key}**\n\n{self.task.instructions}\n\n"
            "Magics: `%pause` / `%resume`, `%status`, `%score [ANSWER]`, `%submit ANSWER`, `%quit`."]}],
              "metadata": {"kernelspec": {"name": KERNEL_NAME, "display_name": "Python 3 (task sandbox)",
                                          "language": "python"}}, "nbformat": 4, "nbformat_minor": 5}
        self.sandbox.write_file(path, json.dumps(nb, indent=1))

    def _make_server(self, tmp: Path) -> LabApp:
        from jupyterlab.labapp import LabApp
        from traitlets.config import Config

        _register_provisioner()
        spec_dir = tmp / "data/kernels" / KERNEL_NAME
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": ["python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3 (task sandbox)", "language": "python", "interrupt_mode": "message",
            "metadata": {"kernel_provisioner": {"provisioner_name": KERNEL_NAME}}}))
        (tmp / "config").mkdir()
        os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(tmp / "data"), os.environ.get("JUPYTER_PATH")]))
        os.environ["JUPYTER_CONFIG_DIR"] = str(tmp / "config")  # no user configuration (extra kernels, terminals)
        uid, _, gid = (self.sandbox.user or "1000:1000").partition(":")

        def hand_to_sandbox_user(model: Any = None, os_path: str = "", contents_manager: Any = None, **_: Any) -> None:
            if os_path and os.path.lexists(os_path):
                os.chown(os_path, int(uid), int(gid or uid), follow_symlinks=False)

        c = Config()
        c.ServerApp.ip = "127.0.0.1"
        c.ServerApp.port = self.port
        c.ServerApp.port_retries = 0
        c.ServerApp.open_browser = False
        c.ServerApp.allow_root = True
        c.ServerApp.root_dir = str(self.workdir)
        c.ServerApp.terminals_enabled = True
        c.ServerApp.jpserver_extensions = {"jupyter_server_terminals": True}
        c.ServerApp.terminado_settings = {"shell_command": shell_command(self.sandbox, str(self.terminal_log))}
        c.ServerApp.contents_manager_class = _workdir_contents_class()
        c.IdentityProvider.token = self.token
        c.KernelSpecManager.allowed_kernelspecs = {KERNEL_NAME}
        c.KernelSpecManager.ensure_native_kernel = False
        c.MappingKernelManager.default_kernel_name = KERNEL_NAME
        c.FileContentsManager.post_save_hook = hand_to_sandbox_user
        c.FileCheckpoints.checkpoint_dir = str(tmp / "checkpoints")
        c.LabApp.workspaces_dir = str(tmp / "workspaces")
        c.LabApp.user_settings_dir = str(tmp / "settings")
        c.LabApp.news_url = None
        return LabApp.initialize_server(argv=[], load_other_extensions=False, config=c)

    def run_cells(self, cells: list[str], *, timeout: float = 600.0) -> list[str]:
        """Run cells as a frontend would, with no JupyterLab (a scripted expert): each goes to the sandbox's
        kernel and is recorded by the same observer; magics work the same. The kernel stops once the session
        has ended (``%submit``, ``%quit``, the budget).

        Returns:
            Each cell's recorded text (a magic's: its reply).

        Raises:
            LabError: The session has ended, or a cell was not recorded within ``timeout`` seconds.
        """
        out: list[str] = []
        for code in cells:
            if self.result is not None:
                raise LabError(f"the session has ended ({self.result.stop_reason}); cell not run: {code[:80]!r}")
            if not self.kernel.alive:
                self.kernel.start()
            self._start_observer()
            client = self.kernel.client
            if client is None:
                raise LabError(f"the sandbox's kernel did not start; cell not run: {code[:80]!r}")
            msg_id = client.execute(code)
            with self._done_cv:
                def recorded(mid: str = msg_id) -> bool:
                    return mid in self._done

                if not self._done_cv.wait_for(recorded, timeout):
                    raise LabError(f"cell not recorded within {timeout} s: {code[:80]!r}")
                out.append(self._done.pop(msg_id))
        if self.result is not None:
            self.kernel.shutdown()
        return out

    def _start_observer(self) -> None:
        if self._observer is None:
            self._observer = threading.Thread(target=self._observe, name="lab-jupyter-observer", daemon=True)
            self._observer.start()

    def _done_with(self, msg_id: str, text: str) -> None:
        with self._done_cv:
            self._done[msg_id] = text
            self._done_cv.notify_all()

    def _stop_server(self) -> None:
        if self._server is not None:
            self._server.io_loop.add_callback(self._server.io_loop.stop)

    # -- observing the kernel ---------------------------------------------------------------------

    def _observe(self) -> None:
        """Record every cell the kernel runs (whoever sent it), answer the magics, watch the budget."""
        cells: dict[str, CellCollector] = {}
        client = None
        while self.result is None:
            hit = self.limits.exceeded(steps=0, tokens=0, created_at=self.created_at,
                                       working_s=self.recorder.clock.elapsed())
            if hit is not None:
                record_limit(self.recorder, *hit, agent=self.agent)
                self._end(RunStatus.DONE, f"limit:{hit[0]}")
                return
            self._record_terminals()
            if self.kernel.client is not client:  # a (re)started kernel
                client, cells = self.kernel.client, {}
                self._last_active = time.monotonic()
            if (self.idle_pause_s is not None and not cells and not self.recorder.clock.paused
                    and time.monotonic() - self._last_active > self.idle_pause_s):
                self.recorder.pause("idle")  # nothing ran for idle_pause_s: the clock stops until the next cell
                self._idle_paused = True
            if client is None:
                time.sleep(0.1)
                continue
            try:
                msg = client.get_iopub_msg(timeout=0.2)
            except Exception:  # noqa: BLE001 - queue.Empty, or the client closed by a restart
                continue
            parent = msg["parent_header"].get("msg_id")
            if cells or msg["msg_type"] == "execute_input":
                self._last_active = time.monotonic()
            if msg["msg_type"] == "execute_input":
                if self._idle_paused and self.recorder.clock.paused:
                    self.recorder.resume()
                self._idle_paused = False
                code = msg["content"].get("code", "")
                word = code.strip().split(None, 1)[0][1:] if code.strip().startswith("%") else ""
                if word in MAGICS:
                    self._magic(word, code.strip()[len(word) + 1:].strip(), parent)
                    continue
                cells[parent] = CellCollector(self.kernel, code, time.monotonic())
            cell = cells.get(parent)
            if cell is not None and cell.feed(msg):
                del cells[parent]
                text = self._record(cell.finish())
                self._snapshot_quietly()
                self._done_with(parent, text)

    def _record(self, res: Any) -> str:
        self.commands += 1
        text = res.text()
        self._act("kernel_cell", tool_name="kernel", arguments={"code": res.code}, content=text,
                  kernel_outputs=res.outputs(), duration=round(res.duration, 6))
        return text

    def _record_terminals(self) -> None:
        """Record what the terminals' relays logged since the last look: typed lines and what was shown."""
        if self.terminal_log is None or not self.terminal_log.exists():
            return
        with self.terminal_log.open("rb") as f:
            f.seek(self._terminal_read)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line still being written waits for the next look
        self._terminal_read += end
        for raw in data[:end].splitlines():
            try:
                rec = json.loads(raw)
            except ValueError:
                continue
            term = {"terminal_id": rec.get("term")}
            self._last_active = time.monotonic()
            if self._idle_paused and self.recorder.clock.paused:
                self.recorder.resume()
            self._idle_paused = False
            if "input" in rec:
                self.commands += 1
                self._act("terminal_input", terminal_line=str(rec["input"]), **term)
            elif "output" in rec:
                self._act("terminal_output", content=str(rec["output"]), **term)
                self._terminal_snapshot_due = True
        if self._terminal_snapshot_due and time.monotonic() - self._snapshot_at >= TERMINAL_SNAPSHOT_S:
            self._snapshot_quietly()  # terminal output comes in pieces: its workdir is archived at most this often

    def _snapshot_quietly(self) -> None:
        """Archive the workdir after a cell (what ``--resume`` restores); a failure is recorded, not raised."""
        self._terminal_snapshot_due, self._snapshot_at = False, time.monotonic()
        try:
            self.snapshot_workdir()
        except Exception as e:  # noqa: BLE001 - over the archive cap, a broken sandbox: the session goes on
            self.recorder.error(e, where="workdir snapshot")

    def _reply(self, msg_id: str, message: str) -> None:
        name = hashlib.sha1(msg_id.encode()).hexdigest()
        self.sandbox.write_file(f"{_REPLIES}/reply-{name}.json", json.dumps({"message": message}))
        self._done_with(msg_id, message)

    def _magic(self, word: str, rest: str, count: str) -> None:
        clock = self.recorder.clock
        try:
            if word == "pause":
                self._idle_paused = False
                self.recorder.pause(rest)
                self._reply(count, "clock paused; %resume to continue")
            elif word == "resume":
                self.recorder.resume()
                self._reply(count, "clock running")
            elif word == "status":
                left = self.limits.working_time_s
                self._reply(count, f"working time {self._clock()}" + (" (paused)" if clock.paused else "")
                            + (f", {max(0, left - clock.elapsed()):.0f} s left" if left else "")
                            + f", {self.commands} cells")
            elif word == "quit":
                self._act("quit")
                self._end(RunStatus.CANCELLED, "quit")
                self._reply(count, "session ended without a submission")
            elif word == "score":
                self._reply(count, self._intermediate_text(rest))
            elif word == "submit":
                if not rest:
                    self._reply(count, "usage: %submit ANSWER")
                    return
                value, shown = self._score_submission(rest)
                self._end(RunStatus.DONE, "submitted", value)
                self._reply(count, shown + "; the session has ended")
        except Exception as e:  # noqa: BLE001 - said in the notebook, recorded, the session goes on
            self.recorder.error(e, where=f"%{word}")
            self._reply(count, f"%{word} failed: {type(e).__name__}: {e}")

    def _intermediate_text(self, answer: str) -> str:
        if not self.task.scoring.intermediate:
            return "this task does not give intermediate scores"
        self._act("score", answer=answer or None)
        from lab.scoring.runs import score_intermediate

        return score_intermediate(self.task, parse_answer(answer) if answer else None, recorder=self.recorder,
                                  sandbox=self.sandbox, agent=self.agent)[1]

    def _end(self, status: RunStatus, reason: str, answer: Any = None) -> None:
        """Finish the run and stop the server (after the magic's cell has shown its reply)."""
        self.result = self._finish(status, reason, answer=answer)
        threading.Timer(2.0, self._stop_server).start()


__all__ = ["JupyterHumanSession", "KERNEL_NAME", "SandboxProvisioner", "host_workdir"]
