"""DERA and ReAct end to end against a real `transformers serve` (SmolLM2), which ignores `tools` and
`response_format`: the backend falls back to prompted tool calls and JSON, recorded as such, and every loop
runs to its end (a 135M model rarely writes the JSON asked for; its invalid replies end the run as the loop's
invalid-reply limit says, never as a crash). One prompted attempt per call keeps this CPU test short."""

from __future__ import annotations

import pytest

from lab.agents import DeraAgent, Limits, ReActAgent
from lab.models import Sampling, load_model, prompted
from lab.tools import tool


@tool
def add(a: float, b: float) -> float:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


@pytest.fixture(autouse=True)
def one_attempt(monkeypatch):
    monkeypatch.setattr(prompted, "ATTEMPTS", 1)


def check_prompted(store, run_id, model, feature):
    calls = store.events(run_id, kinds=["model_call"])
    fallback = [c for c in calls if c.attrs.get("lab.fallback") == "prompted"]
    assert feature in prompted.ignored_features(model) and fallback
    first = calls[0].attrs  # the native attempt came first, recorded as it was (unless an earlier call saw it)
    assert "lab.fallback" not in first or "was seen to ignore" in first["lab.fallback.reason"]
    assert all("ignore" in c.attrs["lab.fallback.reason"] for c in fallback)
    for c in fallback:  # a reply is accepted only when valid; every rejected one is recorded with its error
        if c.attrs["gen_ai.response.finish_reasons"] == ["error"]:
            assert c.attrs["lab.fallback.invalid"] and c.attrs["lab.retryable"] is True
    return fallback


def test_dera_runs_against_transformers_serve(server, store):  # noqa: F811
    url, model_id = server
    model = load_model(f"openai:{model_id}@{url}", retries=0, timeout=900)  # a loaded CPU is slow
    agent = DeraAgent(model, limits=Limits(steps=1, invalid_replies=1),
                      sampling=Sampling(max_tokens=96, temperature=0), message_max_chars=120)
    res = agent.start(store, "Which vitamin deficiency causes scurvy?").run()
    assert res.status == "done", res.error
    calls = store.events(res.run_id, kinds=["model_call"])
    off_schema = [c for c in calls if "lab.fallback" not in c.attrs and c.attrs.get("error.message")
                  and "cut by max_tokens" not in c.attrs["error.message"]]
    if off_schema or any("lab.fallback" in c.attrs for c in calls):  # the server ignores response_format (seen
        for c in check_prompted(store, res.run_id, model, "json"):  # now or by an earlier call): prompted JSON
            if c.attrs["gen_ai.response.finish_reasons"] != ["error"]:
                assert set(c.attrs["lab.response.parsed"]) >= {"answer"} or "message" in c.attrs["lab.response.parsed"]
    else:  # every native reply was the JSON asked for, or cut by max_tokens (no format problem to fall back on)
        assert all(c.attrs.get("lab.response.parsed") is not None or "cut by max_tokens" in c.attrs["error.message"]
                   for c in calls)


def test_react_runs_against_transformers_serve(server, store):  # noqa: F811
    url, model_id = server
    model = load_model(f"openai:{model_id}@{url}", retries=0, timeout=600)
    agent = ReActAgent(model, [add], limits=Limits(steps=2, invalid_replies=1),
                       sampling=Sampling(max_tokens=64, temperature=0))
    res = agent.start(store, "Use the add tool to add 2 and 3, then submit the result.").run()
    assert res.status == "done" and res.stop_reason in ("submitted", "limit:steps", "invalid_replies"), res.error
    for c in check_prompted(store, res.run_id, model, "tools"):
        if c.attrs["gen_ai.response.finish_reasons"] != ["error"]:
            assert c.attrs["gen_ai.output.messages"][0]["tool_calls"]  # a valid call of an offered tool
