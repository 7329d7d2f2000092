"""The OpenAI-compatible backend against a real server: ``transformers serve`` on loopback, serving the
embedded SmolLM2 (converted folder), started by the ``server`` fixture (conftest) and stopped by its PID."""

from __future__ import annotations

import pytest

from lab.models import Message, ModelError, ModelOutputError, Sampling, ToolSpec, load_model
from lab.traces import EventKind, RunRecorder


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
    except ModelOutputError as e:  # natively, then through the prompted fallback: recorded, retryable
        assert e.retryable
        calls = store.events(rec.run_id, kinds=[EventKind.MODEL_CALL])
        assert calls and all(c.attrs["lab.retryable"] is True for c in calls if "error.type" in c.attrs)
        assert "error.type" in calls[-1].attrs
    else:
        assert r.message.tool_calls[0].name == "add"
        assert set(r.message.tool_calls[0].arguments) == {"a", "b"}


def test_unknown_model_is_a_clear_client_error(server):
    url, _ = server
    with pytest.raises(ModelError, match="HTTP 4") as e:
        load_model(f"openai:no-such-model@{url}").chat([Message("user", "hi")], sampling=Sampling(max_tokens=4))
    assert not e.value.retryable
