"""The OpenAI-compatible backend against a real server: ``transformers serve`` on loopback, serving the
embedded SmolLM2 (converted folder), started by this test and stopped by its PID."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lab.models import Message, ModelError, ModelOutputError, Sampling, ToolSpec, load_model
from lab.models.embedded import smollm2_dir
from lab.traces import EventKind, RunRecorder

CLI = Path(sys.executable).parent / "transformers"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``(base_url, model_id)`` of a running ``transformers serve``."""
    if not CLI.exists() or shutil.which("uvicorn", path=str(CLI.parent)) is None:
        pytest.skip("transformers[serving] is not installed (pip install 'transformers[serving]')")
    model_dir = str(smollm2_dir())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(CLI), "serve", model_dir, "--host", "127.0.0.1", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"transformers serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"{url}/v1", model_dir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_real_server_answers_and_is_recorded(server, store):
    url, model_id = server
    model = load_model(f"openai:{model_id}@{url}")
    rec = RunRecorder.start(store, {"task": "q"})
    r = model.chat([Message("user", "What is the capital of France?")], sampling=Sampling(max_tokens=12),
                   recorder=rec, agent="solver")
    assert r.message.content.strip() and r.usage.input_tokens > 0 and 0 < r.usage.output_tokens <= 12
    assert r.finish_reason in ("stop", "length") and r.model == model_id
    ev = store.events(rec.run_id, kinds=[EventKind.MODEL_CALL])[0]
    assert ev.attrs["gen_ai.system"] == "openai" and ev.attrs["server.address"] == url
    assert ev.attrs["gen_ai.output.messages"][0]["content"] == r.message.content


def test_real_server_tool_call_in_json_mode_is_validated(server, store):
    """This server ignores ``response_format``, so SmolLM2's reply is free text: the backend either gets a
    schema-valid call or records a retryable failure for each attempt — never a crash or a bad call."""
    url, model_id = server
    model = load_model(f"openai:{model_id}@{url}", native_tools=False, retries=1, backoff=0.01)
    add = ToolSpec("add", "Add two numbers.", {"type": "object", "properties": {"a": {"type": "number"},
                                                                                  "b": {"type": "number"}},
                                               "required": ["a", "b"]})
    rec = RunRecorder.start(store, {"task": "q"})
    try:
        r = model.chat([Message("user", "Add 2 and 3.")], tools=[add], recorder=rec,
                       sampling=Sampling(tool_choice="required", max_tokens=20, temperature=0))
    except ModelOutputError as e:
        assert e.retryable
        assert len(store.events(rec.run_id, kinds=[EventKind.ERROR])) == 1  # the first, retried attempt
        call = store.events(rec.run_id, kinds=[EventKind.MODEL_CALL])[0]
        assert call.attrs["lab.retryable"] is True and call.attrs["lab.attempt"] == 2
    else:
        assert r.message.tool_calls[0].name == "add"
        assert set(r.message.tool_calls[0].arguments) == {"a", "b"}


def test_unknown_model_is_a_clear_client_error(server):
    url, _ = server
    with pytest.raises(ModelError, match="HTTP 4") as e:
        load_model(f"openai:no-such-model@{url}").chat([Message("user", "hi")], sampling=Sampling(max_tokens=4))
    assert not e.value.retryable
