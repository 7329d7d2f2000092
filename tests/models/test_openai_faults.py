"""The OpenAI-compatible backend against canned server faults: retries, backoff, 4xx, malformed
replies, off-schema tool calls, several endpoints, and keys kept out of traces."""

from __future__ import annotations

import socket

import pytest
from fake_server import FakeServer, completion

from lab.models import Message, ModelError, ModelOutputError, OpenAIModel, Sampling, ToolSpec, load_model
from lab.traces import EventKind, RunRecorder

ASK = [Message("user", "hi")]
ADD = ToolSpec("add", "Add numbers", {"type": "object", "required": ["a", "b"],
                                      "properties": {"a": {"type": "number"}, "b": {"type": "number"}}})
KEY = "sk-test-0123456789abcdefghij"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _model(urls, **kw) -> OpenAIModel:
    return OpenAIModel("fake", base_urls=urls, api_key=KEY, backoff=0.01, **kw)


def test_retries_429_and_500_then_answers_and_records(store):
    replies = [(429, {"error": "slow down"}, {"retry-after": "0.05"}), (500, {"error": "boom"}, {}),
               (200, completion("hello"), {})]
    with FakeServer(replies) as srv:
        rec = RunRecorder.start(store, {"task": "t"})
        r = _model(srv.url, cooldown=0).chat(ASK, sampling=Sampling(temperature=0, max_tokens=5, seed=1),
                                             recorder=rec, agent="a")
    assert r.message.content == "hello" and r.usage.input_tokens == 11 and r.model == "fake"
    assert len(srv.requests) == 3
    assert srv.requests[0] == {"model": "fake", "messages": [{"role": "user", "content": "hi"}],
                               "temperature": 0, "max_tokens": 5, "seed": 1}
    assert srv.headers[0]["Authorization"] == f"Bearer {KEY}"
    errors = store.events(rec.run_id, kinds=[EventKind.ERROR])
    assert ["HTTP 429" in e.attrs["error.message"] for e in errors] == [True, False]
    calls = store.events(rec.run_id, kinds=[EventKind.MODEL_CALL])
    assert len(calls) == 1 and calls[0].attrs["lab.attempt"] == 3
    assert calls[0].attrs["gen_ai.output.messages"][0]["content"] == "hello"
    raw = "".join(r[-1] for r in store.raw_events(rec.run_id))
    assert KEY not in raw and "server.address" in raw


def test_4xx_is_a_clear_error_without_retry(store):
    with FakeServer([(401, {"error": {"message": f"bad key {KEY}"}}, {})]) as srv:
        rec = RunRecorder.start(store, {"task": "t"})
        with pytest.raises(ModelError, match="HTTP 401") as e:
            _model(srv.url).chat(ASK, recorder=rec)
    assert not e.value.retryable and len(srv.requests) == 1
    assert KEY not in str(e.value)
    call = store.events(rec.run_id, kinds=[EventKind.MODEL_CALL])[0]
    assert call.attrs["gen_ai.response.finish_reasons"] == ["error"] and call.attrs["lab.retryable"] is False


def test_malformed_body_retried_then_recorded_failure(store):
    with FakeServer([(200, b"{not json", {}), (200, {"choices": []}, {})]) as srv:
        rec = RunRecorder.start(store, {"task": "t"})
        with pytest.raises(ModelOutputError, match="malformed response") as e:
            _model(srv.url, retries=2).chat(ASK, recorder=rec)
    assert e.value.retryable and len(srv.requests) == 3
    assert len(store.events(rec.run_id, kinds=[EventKind.ERROR])) == 2


def test_native_tool_calls_parsed_and_validated():
    good = {"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}
    bad = {"id": "c2", "type": "function", "function": {"name": "add", "arguments": '{"a": "one"}'}}
    unknown = {"id": "c3", "type": "function", "function": {"name": "rm", "arguments": "{}"}}
    with FakeServer([(200, completion(tool_calls=[good], finish="tool_calls"), {}),
                     (200, completion(tool_calls=[bad]), {}), (200, completion(tool_calls=[unknown]), {})]) as srv:
        m = _model(srv.url, retries=0)
        r = m.chat(ASK, tools=[ADD], sampling=Sampling(tool_choice="add"))
        assert r.finish_reason == "tool_calls"
        assert [(c.id, c.name, c.arguments) for c in r.message.tool_calls] == [("c1", "add", {"a": 1, "b": 2})]
        assert srv.requests[0]["tools"][0]["function"]["name"] == "add"
        assert srv.requests[0]["tool_choice"] == {"type": "function", "function": {"name": "add"}}
        with pytest.raises(ModelOutputError, match="do not match its schema"):
            m.chat(ASK, tools=[ADD])
        with pytest.raises(ModelOutputError, match="unknown tool 'rm'"):
            m.chat(ASK, tools=[ADD])


def test_json_mode_tool_calls_and_history():
    with FakeServer([(200, completion('{"name": "add", "arguments": {"a": 2, "b": 3}}'), {}),
                     (200, completion('{"answer": "5"}'), {}), (200, completion('{"name": "add"'), {})]) as srv:
        m = _model(srv.url, native_tools=False, retries=0)
        r = m.chat(ASK, tools=[ADD], sampling=Sampling(tool_choice="required"))
        assert r.message.tool_calls[0].arguments == {"a": 2, "b": 3}
        body = srv.requests[0]
        assert "tools" not in body and body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["schema"]["properties"]["name"] == {"const": "add"}
        assert "add" in body["messages"][0]["content"]  # tool list in the system prompt
        history = ASK + [r.message, Message("tool", "5", tool_call_id=r.message.tool_calls[0].id)]
        r2 = m.chat(history, tools=[ADD])
        assert r2.message.content == "5" and not r2.message.tool_calls
        sent = srv.requests[1]["messages"]
        assert sent[2]["content"] == '{"name": "add", "arguments": {"a": 2, "b": 3}}'
        assert sent[3] == {"role": "user", "content": "Tool result: 5"}
        with pytest.raises(ModelOutputError, match="not valid JSON"):  # truncated reply
            m.chat(ASK, tools=[ADD])


def test_response_schema_validated():
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}
    with FakeServer([(200, completion('{"x": 3}'), {}), (200, completion('{"y": 3}'), {})]) as srv:
        m = _model(srv.url, retries=0)
        assert m.chat(ASK, response_schema=schema).parsed == {"x": 3}
        with pytest.raises(ModelOutputError, match="does not match"):
            m.chat(ASK, response_schema=schema)


def test_several_endpoints_spread_and_skip_one_that_is_down():
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    with FakeServer([(200, completion("a"), {})]) as s1, FakeServer([(200, completion("b"), {})]) as s2:
        m = load_model(f"openai:fake@{s1.url},{s2.url}")
        assert sorted(m.chat(ASK).message.content for _ in range(4)) == ["a", "a", "b", "b"]
        m2 = _model([dead, s1.url], cooldown=60)
        assert [m2.chat(ASK).message.content for _ in range(3)] == ["a", "a", "a"]
        assert len(s1.requests) == 2 + 3  # the dead endpoint was tried once, then skipped


def test_server_down_and_timeout_are_retryable_errors():
    dead = f"http://127.0.0.1:{_free_port()}/v1"
    with pytest.raises(ModelError, match="server unreachable") as e:
        _model(dead, retries=1).chat(ASK)
    assert e.value.retryable
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts connections, never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
        with pytest.raises(ModelError, match="no answer within 0.2 s") as e:
            _model(url, retries=0, timeout=0.2).chat(ASK)
        assert e.value.retryable
    finally:
        listener.close()


def test_key_from_environment(monkeypatch):
    monkeypatch.setenv("LAB_OPENAI_API_KEY", "sk-env-abcdefghijklmnopqrst")
    with FakeServer([(200, completion("ok"), {})]) as srv:
        OpenAIModel("fake", base_urls=srv.url).chat(ASK)
    assert srv.headers[0]["Authorization"] == "Bearer sk-env-abcdefghijklmnopqrst"
