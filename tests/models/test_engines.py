"""Managed inference engines: the launcher started for real with ``transformers serve`` on the embedded
SmolLM2 (the same code path as vLLM and SGLang), and with a bare HTTP server for process handling."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lab.models import Message, ModelError, Sampling, load_model
from lab.models.embedded import smollm2_dir
from lab.models.engines import ENGINES, EngineSpec, start_engine
from lab.traces import EventKind, RunRecorder

CLI = Path(sys.executable).parent / "transformers"
HTTP = EngineSpec("http", None, "-", lambda x: [sys.executable, "-m", "http.server", str(x.port), "--bind",
                                                 "127.0.0.1"], {}, health="/")


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # a zombie left to init is gone too


def _group_gone(pgid: int) -> bool:
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return False
    return True


def test_transformers_serve_as_a_managed_engine(tmp_path, store):
    """Start, health, calls (recorded under the engine's name), kill -9 of the engine -> one clear error,
    then a clean stop with nothing of its process group left."""
    if not CLI.exists():
        pytest.skip("transformers[serving] is not installed (pip install 'transformers[serving]')")
    serve = EngineSpec("transformers", None, "pip install 'transformers[serving]'",
                       lambda x: [str(CLI), "serve", str(x.path), "--host", "127.0.0.1", "--port", str(x.port)], {})
    path = smollm2_dir()
    model = start_engine(serve, path, name="serve:smollm2", served=str(path), log_dir=tmp_path,
                         env={"HF_HUB_OFFLINE": "1"}, retries=0, startup_timeout=240)
    pid = model.engine.proc.pid
    try:
        assert model.engine.url.startswith("http://127.0.0.1:") and model.engine.alive()
        rec = RunRecorder.start(store, {"task": "q", "model": "serve:smollm2"})
        r = model.chat([Message("user", "What is the capital of France?")], sampling=Sampling(max_tokens=8),
                       recorder=rec)
        assert r.message.content.strip() and 0 < r.usage.output_tokens <= 8
        ev = store.events(rec.run_id, kinds=[EventKind.MODEL_CALL])[0]
        assert ev.attrs["gen_ai.request.model"] == "serve:smollm2"
        assert ev.attrs["server.address"] == f"{model.engine.url}/v1"
        assert model.engine.log.parent == tmp_path and model.engine.log.stat().st_size > 0

        os.kill(pid, signal.SIGKILL)
        model.engine.proc.wait(timeout=30)
        with pytest.raises(ModelError, match=r"serve:smollm2: the engine is not running \(exit code -9\); its log"):
            model.chat([Message("user", "hi")], sampling=Sampling(max_tokens=4))
    finally:
        model.close()
    assert model.closed and _gone(pid) and _group_gone(pid)


def test_close_stops_the_engine_and_its_group(tmp_path):
    model = start_engine(HTTP, smollm2_dir(), log_dir=tmp_path, startup_timeout=60)
    pid = model.engine.proc.pid
    assert model.engine.alive() and not _gone(pid)
    model.close()
    assert _gone(pid) and _group_gone(pid) and model.closed
    model.close()  # twice is fine


def test_engine_dies_with_the_process_that_started_it(tmp_path):
    """A ``kill -9`` of the lab's process leaves no engine behind (the kernel sends it SIGTERM)."""
    script = textwrap.dedent(f"""
        import sys, threading, time
        from lab.models.engines import EngineSpec, start_engine
        from tests.models.test_engines import HTTP
        out = {{}}
        def load():  # from a thread that ends, as an experiment's worker would
            out["m"] = start_engine(HTTP, {str(smollm2_dir())!r}, log_dir=__import__("pathlib").Path({str(tmp_path)!r}))
        t = threading.Thread(target=load); t.start(); t.join()
        print(out["m"].engine.proc.pid, flush=True)
        time.sleep(300)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        engine_pid = int(parent.stdout.readline())
        time.sleep(1.0)
        assert not _gone(engine_pid)  # outlived the thread that started it
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 20
    while not _gone(engine_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(engine_pid)


def test_missing_or_failing_engine_is_one_clear_line(tmp_path):
    absent = EngineSpec("absent", "no_such_engine_module", "pip install absent-engine", HTTP.command, {})
    with pytest.raises(ModelError, match=r"the absent engine is not installed .*\(pip install absent-engine\)$"):
        start_engine(absent, smollm2_dir())
    if ENGINES["vllm"].module and __import__("importlib").util.find_spec("vllm") is None:
        with pytest.raises(ModelError, match=r"vllm engine is not installed .*\(pip install vllm\)"):
            load_model(f"vllm:{smollm2_dir()}")
    fail = "import sys; print('error: unknown flag --bad'); sys.exit(3)"
    crash = EngineSpec("crash", None, "-", lambda x: [sys.executable, "-c", fail], {})
    with pytest.raises(ModelError, match=r"exited with code 3 while starting: error: unknown flag --bad \(log: "):
        start_engine(crash, smollm2_dir(), log_dir=tmp_path)
    with pytest.raises(ModelError, match="no config.json"):
        start_engine(HTTP, tmp_path, log_dir=tmp_path)


def test_engine_commands_name_the_parser_the_port_and_the_gpus(tmp_path):
    from lab.models.engines import Launch

    x = Launch(Path("/models/q"), "q", 4321, 2, "hermes")
    vllm = ENGINES["vllm"].command(x)
    assert vllm[1:3] == ["-m", "vllm.entrypoints.openai.api_server"] and "/models/q" in vllm
    for flag, value in (("--port", "4321"), ("--host", "127.0.0.1"), ("--tensor-parallel-size", "2"),
                        ("--tool-call-parser", "hermes"), ("--served-model-name", "q")):
        assert vllm[vllm.index(flag) + 1] == value
    assert "--enable-auto-tool-choice" in vllm
    sglang = ENGINES["sglang"].command(Launch(Path("/models/q"), "q", 4321, 0, None))
    assert sglang[sglang.index("--tp-size") + 1] == "1" and "--tool-call-parser" not in sglang
    assert sglang[sglang.index("--grammar-backend") + 1] == "xgrammar"
    seen = []  # the parser follows the config's model_type; the served name is the directory's
    spy = EngineSpec("spy", None, "-", lambda x: seen.append(x) or [sys.executable, "-c", "raise SystemExit(1)"],
                     {"llama": "llama3_json"})
    with pytest.raises(ModelError, match="exited with code 1"):
        start_engine(spy, smollm2_dir(), log_dir=tmp_path, gpus=3)
    assert (seen[0].tool_parser, seen[0].gpus, seen[0].served) == ("llama3_json", 3, smollm2_dir().name)
