"""An interactive terminal inside a Docker sandbox, for JupyterLab's terminals in a human session.

:func:`shell_command` is the host command a terminal runs (JupyterLab gives it a host pty): it starts
``python -m lab.sandbox.terminal``, which opens an attached TTY exec in the sandbox's container through the
Docker SDK and relays bytes between the host pty and the exec's socket (window size included). In the
container, the exec server's ``--shell`` entry turns into the sandbox's user with the same hardening as every
command the sandbox runs (capabilities dropped from the bounding set, the user's groups plus a marker group,
none left) and executes an interactive shell.

The relay also writes what happens to a log, one JSON object a line: ``{"term", "input"}`` for each line typed
(Enter; backspaces applied, escape sequences dropped) and ``{"term", "output"}`` for what the terminal showed
since (escape sequences dropped), so the session records terminal work as events.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import select
import signal
import socket
import struct
import sys
import termios
import time
import tty
from typing import TYPE_CHECKING, Any

from lab.sandbox import docker as docker_backend

if TYPE_CHECKING:
    from docker import APIClient

    from lab.sandbox.docker import DockerSandbox

_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])|\r")
_OUTPUT_IDLE_S = 0.5
_OUTPUT_MAX = 64 << 10


def shell_command(sandbox: DockerSandbox, log: str) -> list[str]:
    """The host command that opens a terminal in ``sandbox`` (a Docker sandbox), logging to ``log``."""
    drop = [str(n) for name, n in docker_backend._SERVER_CAPS.items() if name not in sandbox.spec.cap_add]
    return [sys.executable, "-m", "lab.sandbox.terminal", sandbox.container_id, sandbox.user, sandbox.workdir, log,
            *drop]


class _Log:
    """Turns the relayed bytes into logged input lines and output chunks."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.term = os.getpid()
        self.line: list[str] = []
        self.out = bytearray()
        self.last_out = 0.0
        self._esc = False

    def _write(self, **rec: Any) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"term": self.term, **rec}) + "\n")

    def typed(self, data: bytes) -> None:
        for ch in data.decode("utf-8", "replace"):
            if self._esc:  # an escape sequence (arrows ...): ends at a letter or ~
                self._esc = not (ch.isalpha() or ch == "~")
            elif ch == "\x1b":
                self._esc = True
            elif ch in "\r\n":
                self.flush()
                self._write(input="".join(self.line))
                self.line = []
            elif ch in "\x7f\x08":
                if self.line:
                    self.line.pop()
            elif ch == "\x03":
                self.flush()
                self._write(input="".join(self.line) + "^C")
                self.line = []
            elif ch >= " " or ch == "\t":
                self.line.append(ch)

    def shown(self, data: bytes) -> None:
        self.out += data
        self.last_out = time.monotonic()
        if len(self.out) > _OUTPUT_MAX:
            self.flush()

    def flush(self) -> None:
        if self.out:
            text = _ANSI.sub("", self.out.decode("utf-8", "replace"))
            self.out.clear()
            if text.strip():
                self._write(output=text)

    def tick(self) -> None:
        if self.out and time.monotonic() - self.last_out > _OUTPUT_IDLE_S:
            self.flush()


def relay(container_id: str, user: str, workdir: str, log_path: str, drop_caps: list[str]) -> int:
    """Run a hardened interactive shell in the container on this process's terminal until it exits."""
    api = docker_backend.docker_client().api
    argv = [*docker_backend._SERVER_ARGV, "--shell", user, *drop_caps]
    exec_id: str = api.exec_create(container_id, argv, stdin=True, stdout=True, stderr=True, tty=True, user="0:0",
                              workdir=workdir, environment={"TERM": os.environ.get("TERM", "xterm-256color")})["Id"]
    sock = docker_backend.attached_socket(api.exec_start(exec_id, socket=True, tty=True))
    log = _Log(log_path)
    stdin = sys.stdin.fileno()
    interactive = os.isatty(stdin)

    def resize(*_: object) -> None:
        if interactive:
            rows, cols = struct.unpack("hh", fcntl.ioctl(stdin, termios.TIOCGWINSZ, b"\0" * 4))
            if rows and cols:
                try:
                    api.exec_resize(exec_id, height=rows, width=cols)
                except Exception:  # noqa: BLE001 - the exec may be gone already
                    pass

    saved = termios.tcgetattr(stdin) if interactive else None
    stdin_done = False
    try:
        if interactive:
            tty.setraw(stdin, termios.TCSANOW)  # not TCSAFLUSH: keys typed during start-up are kept
            signal.signal(signal.SIGWINCH, resize)
            resize()
        # keys typed before the shell's first prompt wait for it (not lost in start-up)
        inputs: list[socket.socket | int] = [sock]
        while True:
            try:
                ready, _, _ = select.select(inputs, [], [], 0.2)
            except InterruptedError:
                continue
            log.tick()
            if sock in ready:
                data = sock.recv(65536)
                if not data:
                    break
                os.write(sys.stdout.fileno(), data)
                log.shown(data)
                if len(inputs) == 1 and not stdin_done:
                    inputs.append(stdin)
            if stdin in ready:
                try:
                    data = os.read(stdin, 65536)
                except OSError:  # the terminal was closed (JupyterLab hung up its pty)
                    break
                if not data:  # the terminal closed: the shell sees the end of its input
                    inputs.remove(stdin)
                    stdin_done = True
                    sock.shutdown(socket.SHUT_WR)
                    continue
                log.typed(data)
                sock.sendall(data)
    finally:
        log.flush()
        if saved is not None:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        sock.close()
        _hang_up(api, exec_id)
    return int(api.exec_inspect(exec_id).get("ExitCode") or 0)


def _hang_up(api: APIClient, exec_id: str) -> None:
    """Send SIGHUP to a shell still running after its terminal closed (as closing a terminal does)."""
    try:
        info = api.exec_inspect(exec_id)
        if info.get("Running") and info.get("Pid"):
            os.kill(int(info["Pid"]), signal.SIGHUP)
    except Exception:  # noqa: BLE001 - gone already, or an engine on another machine
        pass


if __name__ == "__main__":
    sys.exit(relay(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]))
