"""Inference engines the lab starts and stops itself: ``load_model("vllm:/models/X")`` or
``load_model("sglang:/models/X")`` starts the engine on a free loopback port, waits until it is healthy, and
sends calls through the OpenAI-compatible backend; the engine stops when the model is closed or this process
exits (even by ``kill -9``: the engine gets SIGTERM from the kernel when its parent dies).

The launcher is generic over the engine's command (:class:`EngineSpec`), so any OpenAI-compatible server
(``transformers serve`` in the tests) runs the same way. Each engine's output goes to a log file beside the
trace store (``<store dir>/engines/``).
"""

from __future__ import annotations

import atexit
import ctypes
import importlib.util
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from lab.models.backend import ChatRequest
from lab.models.base import ChatResponse
from lab.models.errors import ModelError, ModelNotFound
from lab.models.openai_compat import OpenAIModel


@dataclass(frozen=True)
class Launch:
    """What an engine's command is built from."""

    path: Path  # the model directory
    served: str  # the model name the server answers to
    port: int
    gpus: int  # local CUDA devices (tensor parallel size)
    tool_parser: str | None  # the engine's tool-call parser for this model, or None


@dataclass(frozen=True)
class EngineSpec:
    """An OpenAI-compatible inference server the lab can start.

    Args:
        name: The name's prefix (``vllm``).
        module: The Python module that must be importable (``vllm``), or None.
        install: The one line that installs it.
        command: Builds the argv from a :class:`Launch`.
        tool_parsers: The engine's tool-call parser per ``model_type`` of the model's config.
        health: The path that answers 200 once the model is loaded.
    """

    name: str
    module: str | None
    install: str
    command: Callable[[Launch], list[str]]
    tool_parsers: dict[str, str]
    health: str = "/health"


def _vllm(x: Launch) -> list[str]:
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(x.path),
           "--served-model-name", x.served, "--host", "127.0.0.1", "--port", str(x.port),
           "--tensor-parallel-size", str(max(1, x.gpus))]
    if x.tool_parser:
        cmd += ["--enable-auto-tool-choice", "--tool-call-parser", x.tool_parser]
    return cmd  # structured outputs (response_format json_schema) use xgrammar by default


def _sglang(x: Launch) -> list[str]:
    cmd = [sys.executable, "-m", "sglang.launch_server", "--model-path", str(x.path), "--served-model-name", x.served,
           "--host", "127.0.0.1", "--port", str(x.port), "--tp-size", str(max(1, x.gpus)),
           "--grammar-backend", "xgrammar"]
    if x.tool_parser:
        cmd += ["--tool-call-parser", x.tool_parser]
    return cmd


ENGINES: dict[str, EngineSpec] = {
    "vllm": EngineSpec("vllm", "vllm", "pip install vllm", _vllm,
                       {"llama": "llama3_json", "qwen2": "hermes", "qwen3": "hermes", "mistral": "mistral"}),
    "sglang": EngineSpec("sglang", "sglang", "pip install 'sglang[all]'", _sglang,
                         {"llama": "llama3", "qwen2": "qwen25", "qwen3": "qwen25", "mistral": "mistral"}),
}


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


def engines_log_dir() -> Path:
    """Where engines' logs go: ``engines/`` beside the trace store."""
    from lab.traces.locations import default_store_path

    return default_store_path().parent / "engines"


# -- a spawner thread that lives as long as the process, so PR_SET_PDEATHSIG fires only when the process dies
# (the signal is tied to the thread that forked the child)

_Spawned = subprocess.Popen[bytes] | BaseException
_spawn_queue: queue.Queue[tuple[Callable[[], subprocess.Popen[bytes]], queue.Queue[_Spawned]]] = queue.Queue()
_spawner: threading.Thread | None = None
_spawner_lock = threading.Lock()


def _spawn_loop() -> None:
    while True:
        make, reply = _spawn_queue.get()
        try:
            reply.put(make())
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            reply.put(e)


def _spawn(make: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    global _spawner
    with _spawner_lock:
        if _spawner is None:
            _spawner = threading.Thread(target=_spawn_loop, name="engine-spawner", daemon=True)
            _spawner.start()
    reply: queue.Queue[_Spawned] = queue.Queue()
    _spawn_queue.put((make, reply))
    out = reply.get()
    if isinstance(out, BaseException):
        raise out
    return out


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class EngineProcess:
    """A running engine: its process, URL and log.

    Raises:
        ModelError: The engine exited while starting, or was not healthy within ``startup_timeout``.
    """

    def __init__(self, argv: list[str], *, name: str, port: int, log: Path, health: str = "/health",
                 startup_timeout: float = 900.0, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = argv
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        self.stopped = False
        with open(log, "ab") as out:
            self.proc = _spawn(lambda: subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
                env={**os.environ, **(env or {})}))
        atexit.register(self.stop)
        try:
            self._wait_healthy(health, startup_timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self, health: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise ModelError(f"{self.name}: the engine exited with code {self.proc.returncode} while starting: "
                                 f"{self.last_line()} (log: {self.log})")
            try:
                if httpx.get(self.url + health, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ModelError(f"{self.name}: the engine was not healthy within {timeout:.0f} s (log: {self.log})")
            time.sleep(0.25)

    def alive(self) -> bool:
        """Whether the engine's process is still running."""
        return self.proc.poll() is None

    def last_line(self) -> str:
        """The last non-empty line of the engine's log."""
        try:
            lines = [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1].strip()[:300] if lines else ""

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the engine and its children (SIGTERM to its process group, SIGKILL after ``timeout``)."""
        if self.stopped:
            return
        self.stopped = True
        atexit.unregister(self.stop)
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever of its group is left
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


class EngineModel(OpenAIModel):
    """A chat model served by an engine this process started: an :class:`OpenAIModel` on the engine's URL.

    ``close()`` stops the engine. A call while the engine is dead, or that fails because it died, raises one
    :class:`ModelError` naming the engine's exit code and log (not retried).

    Args:
        engine: The running engine.
        served: The model name the server answers to.
        **options: :class:`OpenAIModel` options (``name=``, ``timeout=``, ``retries=`` ...).
    """

    def __init__(self, engine: EngineProcess, served: str, **options: Any) -> None:
        super().__init__(served, base_urls=[f"{engine.url}/v1"], **options)
        self.engine = engine

    def _chat(self, req: ChatRequest) -> ChatResponse:
        self._check()
        try:
            return super()._chat(req)
        except ModelError:
            self._check()
            raise

    @property
    def closed(self) -> bool:
        """Whether the engine was stopped (``load_model`` then starts a new one)."""
        return self.engine.stopped

    def _check(self) -> None:
        if not self.engine.alive():
            raise ModelError(f"model {self.name}: the engine is not running (exit code {self.engine.proc.returncode}"
                             f"); its log: {self.engine.log}")

    def close(self) -> None:
        """Close the connections and stop the engine."""
        super().close()
        self.engine.stop()


def start_engine(spec: EngineSpec, path: str | Path, *, name: str | None = None, served: str | None = None,
                 tool_parser: str | None = None,
                 gpus: int | None = None, startup_timeout: float = 900.0, log_dir: Path | None = None,
                 env: dict[str, str] | None = None, **options: Any) -> EngineModel:
    """Start ``spec``'s engine serving the model at ``path`` and return a chat model that talks to it.

    Args:
        spec: The engine (an entry of ``ENGINES``, or any OpenAI-compatible server's :class:`EngineSpec`).
        path: The model directory.
        name: The model's name in records (default ``<engine>:<path>``).
        served: The model name the server answers to (default: the directory's name).
        tool_parser: The engine's tool-call parser (default: by the config's ``model_type``; without one,
            tool calls are constrained JSON replies through ``response_format``).
        gpus: Tensor-parallel size (default: every local CUDA device).
        startup_timeout: Seconds to wait for the engine to be healthy.
        log_dir: Where the engine's log goes (default :func:`engines_log_dir`).
        env: Extra environment variables for the engine.
        **options: Passed to :class:`OpenAIModel` (``timeout=``, ``retries=`` ...).

    Raises:
        ModelNotFound: The directory does not exist or has no ``config.json``.
        ModelError: The engine is not installed (one line saying how to install it), exited while
            starting, or was not healthy in time.
    """
    path = Path(path).expanduser().resolve()
    name = name or f"{spec.name}:{path}"
    if spec.module and importlib.util.find_spec(spec.module) is None:
        raise ModelError(f"model {name}: the {spec.name} engine is not installed in this Python environment "
                         f"({spec.install})")
    if not (path / "config.json").is_file():
        raise ModelNotFound(f"model {name}: {path} is not a model directory (no config.json)")
    model_type = json.loads((path / "config.json").read_text()).get("model_type", "")
    parser = tool_parser or spec.tool_parsers.get(model_type)
    port = free_port()
    served = served or path.name
    argv = spec.command(Launch(path, served, port, _gpu_count() if gpus is None else gpus, parser))
    log = (log_dir or engines_log_dir()) / f"{spec.name}-{path.name}-{time.strftime('%Y%m%d-%H%M%S')}-{port}.log"
    engine = EngineProcess(argv, name=name, port=port, log=log, health=spec.health, startup_timeout=startup_timeout,
                           env=env)
    options.setdefault("native_tools", parser is not None)
    return EngineModel(engine, served, name=name, **options)
