"""The transformers backend on the real embedded SmolLM2 (CPU): answers, constrained tool calls and JSON,
continuous batching, recording, and faults. One model is shared by every test (session fixture)."""

from __future__ import annotations

import threading

import jsonschema
import pytest
import torch

from lab.models import Message, ModelError, ModelNotFound, Sampling, ToolCall, ToolSpec, load_model
from lab.models.embedded import find_smollm2, smollm2_dir
from lab.traces import EventKind, RunRecorder

WEATHER = ToolSpec("get_weather", "Get the current weather for a city.", {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"]})
ADD = ToolSpec("add", "Add two numbers.", {
    "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]})
TOOLS = [WEATHER, ADD]
SPECS = {t.name: t.parameters for t in TOOLS}


def test_answers_a_question_and_records_the_call(smollm2, store):
    assert load_model("smollm2") is smollm2  # one shared instance per process
    rec = RunRecorder.start(store, {"task": "q", "model": "smollm2"})
    msgs = [Message("user", "What is the capital of France?")]
    r = smollm2.chat(msgs, sampling=Sampling(max_tokens=24), recorder=rec, agent="solver")
    assert "Paris" in r.message.content
    assert r.finish_reason in ("stop", "length") and r.latency > 0
    assert r.usage.input_tokens == len(smollm2.prompt_ids(msgs)) and 0 < r.usage.output_tokens <= 24
    ev = store.events(rec.run_id, kinds=[EventKind.MODEL_CALL])[0]
    assert ev.agent == "solver"
    a = ev.attrs
    assert (a["gen_ai.system"], a["gen_ai.request.model"], a["gen_ai.request.max_tokens"]) == \
        ("transformers", "smollm2", 24)
    assert a["gen_ai.usage.output_tokens"] == r.usage.output_tokens
    assert a["gen_ai.output.messages"][0]["content"] == r.message.content
    assert a["gen_ai.input.messages"] == [{"role": "user", "content": "What is the capital of France?"}]


def test_concurrent_tool_calls_are_batched_and_schema_valid(smollm2):
    prompts = ["What's the weather in Paris?", "Add 2 and 3.", "Is it raining in Tokyo, in fahrenheit?",
               "What is 10 plus 32?"]
    results: list = [None] * len(prompts)
    before = len(smollm2.batches)

    def ask(i: int) -> None:
        results[i] = smollm2.chat([Message("user", prompts[i])], tools=TOOLS,
                                  sampling=Sampling(tool_choice="required", max_tokens=160))

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(smollm2.batches[before:]) > 1  # decode steps served several agents at once
    for r in results:
        assert r.finish_reason == "tool_calls" and len(r.message.tool_calls) == 1
        call = r.message.tool_calls[0]
        jsonschema.validate(call.arguments, SPECS[call.name])
        assert call.id.startswith("call_")


def test_response_schema_and_tool_history(smollm2):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
              "required": ["city", "population"]}
    r = smollm2.chat([Message("user", "Name a big city and its population as JSON.")], response_schema=schema,
                     sampling=Sampling(max_tokens=160))
    jsonschema.validate(r.parsed, schema)
    # a max_tokens too small for a reply without strings is raised so the JSON still completes (one with
    # strings is a ReplyBudgetError: tests/models/test_reply_budget.py)
    tiny = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "integer"}},
            "required": ["ok", "n"]}
    r = smollm2.chat([Message("user", "Is water wet? One word.")], response_schema=tiny,
                     sampling=Sampling(max_tokens=4))
    jsonschema.validate(r.parsed, tiny)
    history = [Message("user", "Add 2 and 3."),
               Message("assistant", tool_calls=[ToolCall("c1", "add", {"a": 2, "b": 3})]),
               Message("tool", "5", tool_call_id="c1")]
    prompt = smollm2.tokenizer.decode(smollm2.prompt_ids(history, TOOLS))
    assert '{"name": "add", "arguments": {"a": 2, "b": 3}}' in prompt and "get_weather" in prompt


def test_generation_faults_are_clear_errors(smollm2, store, monkeypatch):
    calls = []

    def oom(**kwargs):
        calls.append(kwargs["input_ids"].shape[0])
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(smollm2.model, "forward", oom)
    rec = RunRecorder.start(store, {"task": "q"})
    with pytest.raises(ModelError, match="CUDA out of memory .* smaller max_batch") as e:
        smollm2.chat([Message("user", "hi")], recorder=rec)
    assert not e.value.retryable and calls == [1]
    ev = store.events(rec.run_id, kinds=[EventKind.MODEL_CALL])[0]
    assert ev.attrs["error.type"] == "ModelError" and "out of memory" in ev.attrs["error.message"]

    def broken(**kwargs):
        raise RuntimeError("device-side assert")

    monkeypatch.setattr(smollm2.model, "forward", broken)
    with pytest.raises(ModelError, match="generation failed: RuntimeError: device-side assert"):
        smollm2.chat([Message("user", "hi")])
    with pytest.raises(ModelError, match="tool_choice 'delete' is not one of the offered tools"):
        smollm2.chat([Message("user", "hi")], tools=TOOLS, sampling=Sampling(tool_choice="delete"))
    assert smollm2.batcher.preparing == 0  # a request that failed before queueing does not hold up batches


def test_missing_and_broken_model_files(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelNotFound, match="no such file or directory"):
        load_model(f"hf:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFound, match="no config.json"):
        load_model(f"hf:{tmp_path / 'empty'}")
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelNotFound, match="cannot load GGUF model .*junk.gguf"):
        load_model(f"hf:{junk}")


def test_embedded_model_is_found_through_the_package():
    gguf = find_smollm2()
    assert gguf.suffix == ".gguf" and "site-packages" in str(gguf)
    assert (smollm2_dir() / "config.json").is_file()
    from lab.doctor import checks

    check = next(c for c in checks() if c.name == "smollm2")
    assert check.ok and "converted cache" in check.detail


def test_templates_with_tools_get_them_natively(smollm2, monkeypatch):
    template = ("{% if tools %}<tools>{{ tools | tojson }}</tools>\n{% endif %}{% for m in messages %}"
                "<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n")
    monkeypatch.setattr(smollm2.tokenizer, "chat_template", template)
    monkeypatch.setattr(smollm2, "_native_tools", True)
    prompt = smollm2.tokenizer.decode(smollm2.prompt_ids([Message("user", "Add 2 and 3.")], TOOLS))
    assert prompt.startswith('<tools>[{"type": "function", "function": {"name": "get_weather"')
    assert 'Call a tool by replying {"name": "<tool>", "arguments": {...}}' in prompt
    assert "You can call these tools" not in prompt  # the tool list is not repeated in the system prompt
