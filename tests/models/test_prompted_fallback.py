"""Prompted tool calls and JSON for servers that ignore `tools`/`response_format` (loopback fake server;
tests/models/test_openai_server.py runs the loops against a real `transformers serve`)."""

from __future__ import annotations

import pytest

from lab.models import Message, ModelOutputError, Sampling, ToolSpec, load_model
from lab.models.prompted import ignored_features
from lab.traces import EventKind, RunRecorder
from tests.models.fake_server import FakeServer, completion

ADD = ToolSpec("add", "Add two numbers.", {"type": "object", "properties": {"a": {"type": "number"},
                                                                             "b": {"type": "number"}},
                                           "required": ["a", "b"]})
OK = {}


def calls(store, rec):
    return store.events(rec.run_id, kinds=[EventKind.MODEL_CALL])


def test_ignored_tools_fall_back_to_a_prompted_call(store):
    replies = [(200, completion("Sure, I will add them."), OK),            # native: tools ignored
               (200, completion('Here: ```json\n{"name": "add", "arguments": {"a": 2}}\n```'), OK),  # invalid
               (200, completion('{"name": "add", "arguments": {"a": 2, "b": 3}}'), OK)]
    with FakeServer(replies) as srv:
        model = load_model(f"openai:fake@{srv.url}", retries=0)
        rec = RunRecorder.start(store, {"task": "q"})
        r = model.chat([Message("user", "Add 2 and 3.")], tools=[ADD], recorder=rec,
                       sampling=Sampling(tool_choice="required"))
        assert r.message.tool_calls[0].arguments == {"a": 2, "b": 3}
        assert "tools" in srv.requests[0] and "tools" not in srv.requests[1]     # the fallback sends no tools
        assert '"name": "<tool>"' in srv.requests[1]["messages"][0]["content"]   # ... but describes them
        assert "not valid" in srv.requests[2]["messages"][-1]["content"]        # the error is fed back
        native, prompted = calls(store, rec)
        assert "lab.fallback" not in native.attrs
        assert prompted.attrs["lab.fallback"] == "prompted" and prompted.attrs["lab.fallback.attempts"] == 2
        assert "ignored the tools" in prompted.attrs["lab.fallback.reason"]
        assert len(prompted.attrs["lab.fallback.invalid"]) == 1
        assert "tools" in ignored_features(model)
        # the next call goes straight to the prompt
        srv.replies = [(200, completion('{"name": "add", "arguments": {"a": 1, "b": 1}}'), OK)]
        n = len(srv.requests)
        model.chat([Message("user", "Add 1 and 1.")], tools=[ADD], sampling=Sampling(tool_choice="required"))
        assert len(srv.requests) == n + 1 and "tools" not in srv.requests[-1]


def test_ignored_response_format_falls_back_to_prompted_json(store):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
    replies = [(200, completion("Paris is the capital."), OK),
               (200, completion('The reply: {"answer": "Paris"} as asked.'), OK)]
    with FakeServer(replies) as srv:
        model = load_model(f"openai:fake2@{srv.url}", retries=0)
        rec = RunRecorder.start(store, {"task": "q"})
        r = model.chat([Message("user", "Capital of France?")], response_schema=schema, recorder=rec)
        assert r.parsed == {"answer": "Paris"}
        assert "response_format" in srv.requests[0] and "response_format" not in srv.requests[1]
        assert calls(store, rec)[-1].attrs["lab.fallback"] == "prompted"


def test_prompted_replies_that_stay_invalid_are_a_retryable_error(store):
    with FakeServer([(200, completion("no idea"), OK)]) as srv:
        model = load_model(f"openai:fake3@{srv.url}", retries=0)
        rec = RunRecorder.start(store, {"task": "q"})
        with pytest.raises(ModelOutputError, match="prompted fallback, 3 attempts") as e:
            model.chat([Message("user", "Add.")], tools=[ADD], sampling=Sampling(tool_choice="required"),
                       recorder=rec)
        assert e.value.retryable
        last = calls(store, rec)[-1]
        assert last.attrs["gen_ai.response.finish_reasons"] == ["error"]
        assert len(last.attrs["lab.fallback.invalid"]) == 3


def test_a_server_that_honours_tools_is_never_prompted(store):
    native = completion(tool_calls=[{"id": "c1", "type": "function",
                                     "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}])
    with FakeServer([(200, native, OK)]) as srv:
        model = load_model(f"openai:fake4@{srv.url}", retries=0)
        r = model.chat([Message("user", "Add.")], tools=[ADD], sampling=Sampling(tool_choice="auto"))
        assert r.message.tool_calls[0].arguments == {"a": 1, "b": 2} and len(srv.requests) == 1
        assert ignored_features(model) == set()
