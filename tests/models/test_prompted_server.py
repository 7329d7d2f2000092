"""DERA and ReAct end to end against a real `transformers serve` (SmolLM2), which ignores `tools` and
`response_format`: the backend falls back to prompted tool calls and JSON, recorded as such."""

from __future__ import annotations

from lab.agents import DeraAgent, Limits, ReActAgent
from lab.models import Sampling, load_model
from lab.models.prompted import ignored_features
from lab.tools import tool
from tests.models.test_openai_server import server  # noqa: F401 - the module's running server fixture


@tool
def add(a: float, b: float) -> float:
    """Add two numbers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def fallback_calls(store, run_id):
    calls = store.events(run_id, kinds=["model_call"])
    return calls, [c for c in calls if c.attrs.get("lab.fallback") == "prompted"]


def test_dera_runs_against_transformers_serve(server, store):  # noqa: F811
    url, model_id = server
    model = load_model(f"openai:{model_id}@{url}", retries=0, timeout=600)  # a loaded CPU is slow
    agent = DeraAgent(model, limits=Limits(steps=1), sampling=Sampling(max_tokens=96, temperature=0),
                      message_max_chars=120)
    res = agent.start(store, "Which vitamin deficiency causes scurvy?").run()
    assert res.status == "done", res.error
    calls, prompted = fallback_calls(store, res.run_id)
    assert "json" in ignored_features(model) and prompted
    assert all("ignore" in c.attrs["lab.fallback.reason"] for c in prompted)
    ok = [c for c in prompted if c.attrs["gen_ai.response.finish_reasons"] != ["error"]]
    assert ok and all(isinstance(c.attrs["lab.response.parsed"], dict) for c in ok)  # schema-valid JSON


def test_react_runs_against_transformers_serve(server, store):  # noqa: F811
    url, model_id = server
    model = load_model(f"openai:{model_id}@{url}", retries=0, timeout=600)  # a loaded CPU is slow
    agent = ReActAgent(model, [add], limits=Limits(steps=3), sampling=Sampling(max_tokens=64, temperature=0))
    res = agent.start(store, "Use the add tool to add 2 and 3, then submit the result.").run()
    assert res.status == "done" and res.stop_reason in ("submitted", "limit:steps", "invalid_replies"), res.error
    calls, prompted = fallback_calls(store, res.run_id)
    assert "tools" in ignored_features(model) and prompted
    ok = [c for c in prompted if c.attrs["gen_ai.response.finish_reasons"] != ["error"]]
    assert ok, [c.attrs.get("lab.fallback.invalid") for c in prompted]
    assert all(c.attrs["gen_ai.output.messages"][0]["tool_calls"] for c in ok)  # valid calls of offered tools
    tool_calls = store.events(res.run_id, kinds=["tool_call"])
    assert tool_calls and {t.attrs["gen_ai.tool.name"] for t in tool_calls} <= {"add", "submit"}
