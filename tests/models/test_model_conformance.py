"""The model conformance suite (:mod:`lab.models.conformance`) on every backend: scripted, OpenAI-compatible
against a real ``transformers serve`` (faults from a canned server and a closed port), and the embedded
SmolLM2 through transformers."""

from __future__ import annotations

import socket

import pytest
from fake_server import FakeServer, completion

from lab.models import Message, ModelError, OpenAIModel, ScriptedModel, ToolCall, load_model
from lab.models.conformance import CHECKS, PROMPTS, ModelCase


def _scripted_reply(messages: list[Message]):
    prompt = messages[-1].content
    return {PROMPTS["plain"]: "Paris",
            PROMPTS["tool"]: ToolCall("", "add", {"a": 2, "b": 3}),
            PROMPTS["named"]: ToolCall("", "add", {"a": 4, "b": 5}),
            PROMPTS["none"]: "Hello!",
            PROMPTS["schema"]: {"json": {"city": "Paris"}}}[prompt]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def text_server():
    """A canned OpenAI-compatible server that answers every request with plain text (never JSON)."""
    with FakeServer([(200, completion("Paris is the capital."), {})]) as srv:
        yield srv


@pytest.fixture(params=["scripted", "openai", "transformers"])
def case(request, text_server) -> ModelCase:
    if request.param == "scripted":
        failing = ScriptedModel([ModelError("scripted outage", retryable=True)], cycle=True)
        failing.retries, failing.backoff = 1, 0.001
        return ModelCase(ScriptedModel(_scripted_reply), off_schema=ScriptedModel(["not json"], cycle=True),
                         failing=failing)
    if request.param == "openai":
        url, model_id = request.getfixturevalue("server")
        return ModelCase(load_model(f"openai:{model_id}@{url}", native_tools=False, retries=1, backoff=0.01),
                         off_schema=OpenAIModel("fake", base_urls=text_server.url, api_key="", retries=1,
                                                backoff=0.01),
                         failing=OpenAIModel("fake", base_urls=f"http://127.0.0.1:{_closed_port()}/v1", api_key="",
                                             retries=2, backoff=0.01, cooldown=0),
                         constrained=False)
    return ModelCase(request.getfixturevalue("smollm2"))


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_model_conformance(check, case, store):
    check(case, store)
