"""Providers by name: each ``<provider>:<model>`` form reaches its OpenAI-compatible path with its own key
as a bearer token and the bare model id (local fake servers stand in for the hosted APIs, at each
provider's real path); keys are never recorded and never sent to another provider."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from fake_server import FakeServer, completion

from lab.models import Message, ModelNotFound, Sampling, ToolSpec, load_model
from lab.models.providers import PROVIDERS
from lab.traces import EventKind, RunRecorder

ADD = ToolSpec("add", "Add numbers", {"type": "object", "required": ["a", "b"],
                                      "properties": {"a": {"type": "number"}, "b": {"type": "number"}}})
CALL = [{"id": "c1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2, "b": 3}'}}]


def _clear_keys(monkeypatch):
    for p in PROVIDERS.values():
        for var in (*p.key_env, f"LAB_{p.name.upper()}_API_KEY", f"LAB_PROVIDER_BASE_URL_{p.name.upper()}"):
            monkeypatch.delenv(var, raising=False)
    for var in ("LAB_OPENAI_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_each_provider_form_reaches_its_path_with_its_key(name, store, monkeypatch):
    _clear_keys(monkeypatch)
    provider = PROVIDERS[name]
    key = f"sk-{name}-key-0123456789abcdef"
    if provider.needs_key:
        monkeypatch.setenv(provider.key_env[-1], key)
    monkeypatch.setenv("OPENAI_API_KEY" if name != "openai" else "UNUSED_KEY", "sk-openai-must-not-leak-0123456789")
    path = urlsplit(provider.base_url).path
    with FakeServer([(200, completion("", CALL, "tool_calls"), {})]) as srv:
        host = srv.url.removesuffix("/v1")
        monkeypatch.setenv(f"LAB_PROVIDER_BASE_URL_{name.upper()}", host + path)  # the provider's path, here
        model = load_model(f"{name}:some-model-1")
        rec = RunRecorder.start(store, {"task": "t"})
        r = model.chat([Message("user", "add 2 and 3")], tools=[ADD], sampling=Sampling(max_tokens=8),
                       recorder=rec)
    assert srv.paths == [f"{path}/chat/completions"]
    assert srv.requests[0]["model"] == "some-model-1" and srv.requests[0]["tools"][0]["function"]["name"] == "add"
    auth = srv.headers[0].get("Authorization")
    assert auth == (f"Bearer {key}" if provider.needs_key else None)  # and never the OpenAI key elsewhere
    assert r.message.tool_calls[0].arguments == {"a": 2, "b": 3}
    call = store.events(rec.run_id, kinds=[EventKind.MODEL_CALL])[0]
    assert call.attrs["gen_ai.system"] == provider.system
    assert call.attrs["gen_ai.request.model"] == f"{name}:some-model-1"
    store.close()
    stored = b"".join(p.read_bytes() for p in store.path.parent.glob("traces.db*"))
    assert key.encode() not in stored and b"must-not-leak" not in stored


def test_url_and_key_precedence(monkeypatch):
    _clear_keys(monkeypatch)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env-0123456789abcdef")
    monkeypatch.setenv("LAB_ANTHROPIC_API_KEY", "sk-ant-lab-0123456789abcdef")
    m = load_model("anthropic:claude-x")
    assert m.base_urls == [PROVIDERS["anthropic"].base_url] and m.name == "anthropic:claude-x"
    assert m._client.headers["Authorization"] == "Bearer sk-ant-lab-0123456789abcdef"
    monkeypatch.setenv("LAB_PROVIDER_BASE_URL_ANTHROPIC", "http://proxy.local/v1")
    assert load_model("anthropic:claude-x").base_urls == ["http://proxy.local/v1"]
    assert load_model("anthropic:claude-x", base_url="http://opt.local/v1").base_urls == ["http://opt.local/v1"]
    assert load_model("anthropic:claude-x@http://a/v1,http://b/v1").base_urls == ["http://a/v1", "http://b/v1"]


def test_missing_key_names_the_variables(monkeypatch):
    _clear_keys(monkeypatch)
    with pytest.raises(ModelNotFound, match=r"google:gemini-x: no API key; set \$LAB_GOOGLE_API_KEY or "
                                            r"\$GEMINI_API_KEY or \$GOOGLE_API_KEY"):
        load_model("google:gemini-x")
    with pytest.raises(ModelNotFound, match="unknown model name 'nosuch:m'"):
        load_model("nosuch:m")
    assert load_model("ollama:llama3").base_urls == ["http://localhost:11434/v1"]  # local: no key needed
