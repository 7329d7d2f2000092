"""The scripted model: scripted replies, callables, files, exact replay of a recorded run."""

from __future__ import annotations

import json

import pytest

from lab.models import (
    ChatModel,
    Message,
    ModelError,
    ModelNotFound,
    ModelOutputError,
    ScriptedModel,
    ToolCall,
    ToolSpec,
    load_model,
)
from lab.traces import EventKind, RunRecorder, TraceStore

ASK = [Message("user", "What is 2+2?")]
SHELL = ToolSpec("shell", "Run a command", {"type": "object", "properties": {"cmd": {"type": "string"}}})


def test_replies_in_order_with_tool_calls_and_exhaustion():
    m = ScriptedModel(["hello", ToolCall("", "shell", {"cmd": "ls"}),
                       {"content": "thinking", "tool_calls": [{"name": "shell", "arguments": {"cmd": "pwd"}}]}])
    assert isinstance(m, ChatModel)
    r1 = m.chat(ASK)
    assert (r1.message.content, r1.finish_reason, r1.message.tool_calls) == ("hello", "stop", [])
    r2 = m.chat(ASK, tools=[SHELL])
    assert r2.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in r2.message.tool_calls] == [("shell", {"cmd": "ls"})]
    assert r2.message.tool_calls[0].id == "call_1_0"
    r3 = m.chat(ASK, tools=[SHELL])
    assert r3.message.content == "thinking" and r3.message.tool_calls[0].arguments == {"cmd": "pwd"}
    assert m.remaining == 0 and len(m.requests) == 3
    with pytest.raises(ModelError, match="ran out of replies"):
        m.chat(ASK)


def test_callable_computes_reply_from_messages():
    m = ScriptedModel(lambda msgs: f"you said {len(msgs)} things: {msgs[-1].content}")
    assert m.chat(ASK).message.content == "you said 1 things: What is 2+2?"
    assert m.chat(ASK + ASK).message.content.startswith("you said 2")
    # a callable inside a list answers just that turn
    m2 = ScriptedModel(["first", lambda msgs: msgs[0].content.upper()])
    assert [m2.chat(ASK).message.content for _ in range(2)] == ["first", "WHAT IS 2+2?"]


def test_json_replies_and_schema():
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    m = ScriptedModel([{"json": {"answer": 4}}, "not json"])
    assert m.chat(ASK, response_schema=schema).parsed == {"answer": 4}
    with pytest.raises(ModelOutputError) as e:
        m.chat(ASK, response_schema=schema)
    assert e.value.retryable and e.value.raw == "not json"


def test_cycle_and_script_files(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("replies:\n  - hi\n  - content: ''\n    tool_calls:\n      - {name: shell, arguments: {cmd: ls}}\n"
                 "cycle: true\n")
    m = load_model(f"scripted:{p}")
    outs = [m.chat(ASK) for _ in range(3)]
    assert [o.message.content for o in outs] == ["hi", "", "hi"]
    assert outs[1].message.tool_calls[0].name == "shell"
    j = tmp_path / "s.json"
    j.write_text(json.dumps(["a", "b"]))
    assert load_model(f"scripted:{j}").chat(ASK).message.content == "a"
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ModelNotFound, match="bad.json"):
        load_model(f"scripted:{bad}")
    with pytest.raises(ModelNotFound, match="not found"):
        load_model(f"scripted:{tmp_path / 'missing.yaml'}")
    with pytest.raises(ModelNotFound, match="unknown model name"):
        load_model("gpt-nonsense")


def test_calls_are_recorded_and_replay_exactly(store: TraceStore, tmp_path):
    rec = RunRecorder.start(store, {"task": "t", "agent": "dera", "model": "scripted"})
    m = ScriptedModel(["draft", ToolCall("c1", "shell", {"cmd": "ls"}), ModelOutputError("bad json", raw="{"),
                       "final"])
    decider = [m.chat(ASK, recorder=rec, agent="decider")]
    researcher = [m.chat(ASK, tools=[SHELL], recorder=rec, agent="researcher")]
    with pytest.raises(ModelOutputError):
        m.chat(ASK, recorder=rec, agent="researcher")
    researcher.append(m.chat(ASK, recorder=rec, agent="researcher"))
    rec.finish()

    calls = store.events(rec.run_id, kinds=[EventKind.MODEL_CALL])
    assert len(calls) == 4
    a = calls[1].attrs
    assert a["gen_ai.request.model"] == "scripted" and a["gen_ai.system"] == "scripted"
    assert a["gen_ai.input.messages"][0] == {"role": "user", "content": "What is 2+2?"}
    assert a["gen_ai.tool.definitions"][0]["function"]["name"] == "shell"
    assert a["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert a["gen_ai.usage.input_tokens"] == 3 and calls[1].agent == "researcher"
    assert calls[2].attrs["error.type"] == "ModelOutputError" and calls[2].attrs["lab.retryable"] is True

    # replay: per agent, in order, failures included; asked in a different interleaving
    for replay in (ScriptedModel.replay(store, rec.run_id), load_model(f"scripted:{store.path}#{rec.run_id}")):
        r0 = replay.chat(ASK, agent="researcher")
        assert r0.message.tool_calls == researcher[0].message.tool_calls
        assert (r0.latency, r0.usage) == (researcher[0].latency, researcher[0].usage)
        with pytest.raises(ModelOutputError, match="bad json") as e:
            replay.chat(ASK, agent="researcher")
        assert e.value.retryable
        assert replay.chat(ASK, agent="decider").message.content == decider[0].message.content
        assert replay.chat(ASK, agent="researcher").message == researcher[1].message
        assert replay.remaining == 0


def test_replay_of_run_without_calls(store: TraceStore):
    rec = RunRecorder.start(store, {"task": "t"})
    with pytest.raises(ModelNotFound, match="no model calls"):
        ScriptedModel.replay(store, rec.run_id)
