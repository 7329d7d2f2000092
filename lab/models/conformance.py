"""The model conformance suite: what every chat backend (scripted, OpenAI-compatible, transformers, a
third-party one) must do alike.

Each ``check_*`` function takes a :class:`ModelCase` (the backend under test, plus optional variants of it
that reply off-schema or fail) and a fresh :class:`~lab.traces.TraceStore`, and raises ``AssertionError``
when the backend breaks a promise:

- each call is one ``model_call`` event with the same attributes (request, response or error, latency,
  attempt), and a retried attempt one ``error`` event before it;
- ``tool_choice``: ``required`` gives tool calls to offered tools with schema-valid arguments, a tool's name
  gives calls to that tool, ``none`` gives text, a name not offered is a non-retryable :class:`ModelError`;
- ``response_schema``: the reply is JSON matching the schema, ``parsed`` holds it;
- a reply off the schema is a retryable :class:`ModelOutputError`, recorded; every failure is recorded.

A backend that cannot constrain its output (a server that ignores ``response_format``) sets
``ModelCase.constrained=False``: there a recorded, retryable :class:`ModelOutputError` is an allowed
outcome of the tool and schema checks, but an off-contract reply never is. A backend's test module runs::

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    def test_model(check, case, store):
        check(case, store)

:data:`PROMPTS` are the user messages each check sends (a scripted case answers by them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lab.models.base import ChatModel, ChatResponse, Message, Sampling, ToolSpec
from lab.models.errors import ModelError, ModelOutputError
from lab.models.recording import (
    ATTEMPT,
    INPUT_MESSAGES,
    LATENCY,
    MAX_TOKENS,
    OPERATION,
    OUTPUT_MESSAGES,
    PARSED,
    RESPONSE_SCHEMA,
    RETRYABLE,
    TOOL_CHOICE,
    TOOL_DEFINITIONS,
)
from lab.traces.protocol import Store
from lab.traces.recorder import RunRecorder
from lab.traces.schema import (
    ERROR_MESSAGE,
    ERROR_TYPE,
    FALLBACK,
    FINISH_REASONS,
    INPUT_TOKENS,
    MODEL,
    OUTPUT_TOKENS,
    SYSTEM,
    TEMPERATURE,
    EventKind,
)

ADD = ToolSpec("add", "Add two numbers.", {"type": "object", "required": ["a", "b"],
                                           "properties": {"a": {"type": "number"}, "b": {"type": "number"}}})
ECHO = ToolSpec("echo", "Repeat a text.", {"type": "object", "required": ["text"],
                                           "properties": {"text": {"type": "string"}}})
TOOLS = [ADD, ECHO]
ANSWER_SCHEMA = {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}}}
PROMPTS = {
    "plain": "What is the capital of France? Answer in one word.",
    "tool": "Add 2 and 3 with a tool.",
    "named": "Use the add tool to add 4 and 5.",
    "none": "Say hello without using any tool.",
    "schema": "Which city is the capital of France? Reply in JSON.",
}
"""The user message of each check, by what it asks for."""


@dataclass
class ModelCase:
    """One backend as the suite reaches it.

    Attributes:
        model: The backend, answering normally.
        off_schema: The same backend set up so that its reply is not JSON (a server sending text), or
            ``None`` when its decoding cannot leave the schema (that check is then skipped).
        failing: The same backend set up so that every call fails with a :class:`ModelError` (a server
            that is down, a script of failures), or ``None`` (that check is then skipped).
        constrained: Whether the backend guarantees replies on the requested schema (see the module doc).
        max_tokens: ``max_tokens`` of each check's request.
    """

    model: ChatModel
    off_schema: ChatModel | None = None
    failing: ChatModel | None = None
    constrained: bool = True
    max_tokens: int = 160


def _call(model: ChatModel, store: Store, prompt: str, **kw: Any) -> tuple[ChatResponse | ModelError, RunRecorder, str]:
    rec = RunRecorder.start(store, {"task": "model-conformance"})
    try:
        out: ChatResponse | ModelError = model.chat([Message("user", prompt)], recorder=rec, agent="solver", **kw)
    except ModelError as e:
        out = e
    return out, rec, rec.run_id


def _one_call(store: Store, run_id: str) -> dict[str, Any]:
    calls = store.events(run_id, kinds=[EventKind.MODEL_CALL])
    if len(calls) == 2 and calls[1].attrs.get(FALLBACK) == "prompted" and ERROR_TYPE in calls[0].attrs:
        calls = calls[1:]  # the server ignored the request's format: its failed reply, then the prompted call
    assert len(calls) == 1, f"expected one model_call event, got {len(calls)}"
    assert calls[0].agent == "solver", calls[0].agent
    return calls[0].attrs


def _assert_request(a: dict[str, Any], model: ChatModel, prompt: str) -> None:
    assert a[OPERATION] == "chat" and a[SYSTEM] == getattr(model, "system", a[SYSTEM]) and a[MODEL] == model.name, a
    assert a[INPUT_MESSAGES] == [Message("user", prompt).to_dict()], a[INPUT_MESSAGES]
    assert isinstance(a[LATENCY], float) and a[LATENCY] >= 0 and isinstance(a[ATTEMPT], int) and a[ATTEMPT] >= 1


def _assert_recorded(store: Store, run_id: str, model: ChatModel, prompt: str, resp: ChatResponse) -> dict[str, Any]:
    a = _one_call(store, run_id)
    _assert_request(a, model, prompt)
    assert a[OUTPUT_MESSAGES] == [resp.message.to_dict()] and a[FINISH_REASONS] == [resp.finish_reason], a
    assert (a[INPUT_TOKENS], a[OUTPUT_TOKENS]) == (resp.usage.input_tokens, resp.usage.output_tokens)
    assert a[LATENCY] == resp.latency > 0 and ERROR_TYPE not in a
    if a.get(FALLBACK) != "prompted":  # a fallback follows the native call's recorded failed attempts
        assert not store.events(run_id, kinds=[EventKind.ERROR])
    return a


def _assert_failure(store: Store, run_id: str, model: ChatModel, prompt: str, err: ModelError) -> dict[str, Any]:
    a = _one_call(store, run_id)
    _assert_request(a, model, prompt)
    assert a[FINISH_REASONS] == ["error"] and OUTPUT_MESSAGES not in a, a
    assert a[ERROR_TYPE] == type(err).__name__ and a[ERROR_MESSAGE] and a[RETRYABLE] == err.retryable, a
    assert "\n" not in str(err), f"error message spans lines: {err}"
    if a.get(FALLBACK) != "prompted":  # a prompted fallback's attempts are re-asks, not retried calls
        retried = store.events(run_id, kinds=[EventKind.ERROR])
        assert len(retried) == a[ATTEMPT] - 1, (len(retried), a[ATTEMPT])
    return a


def _allowed_failure(case: ModelCase, store: Store, run_id: str, prompt: str, out: Any) -> bool:
    """A recorded retryable ModelOutputError is allowed of an unconstrained backend; anything else fails."""
    if isinstance(out, ModelError):
        assert not case.constrained and isinstance(out, ModelOutputError) and out.retryable, repr(out)
        _assert_failure(store, run_id, case.model, prompt, out)
        return True
    return False


def _valid(value: Any, schema: dict[str, Any]) -> None:
    import jsonschema

    try:
        jsonschema.validate(value, schema)
    except jsonschema.ValidationError as e:
        raise AssertionError(f"{value!r} does not match {schema}: {e.message}") from None


def check_is_a_chat_model(case: ModelCase, store: Store) -> None:
    """The backend implements :class:`~lab.models.ChatModel` and names itself."""
    assert isinstance(case.model, ChatModel) and case.model.name and isinstance(getattr(case.model, "system", ""), str)


def check_answer_is_one_model_call(case: ModelCase, store: Store) -> None:
    """A plain call returns an assistant message and is recorded as one ``model_call`` with every attribute."""
    prompt = PROMPTS["plain"]
    out, _, run_id = _call(case.model, store, prompt, sampling=Sampling(max_tokens=case.max_tokens, temperature=0))
    assert isinstance(out, ChatResponse), repr(out)
    assert out.message.role == "assistant" and out.message.content.strip() and not out.message.tool_calls
    assert out.finish_reason in ("stop", "length") and out.model and out.parsed is None
    assert out.usage.input_tokens >= 0 and out.usage.output_tokens >= 0
    a = _assert_recorded(store, run_id, case.model, prompt, out)
    assert a[MAX_TOKENS] == case.max_tokens and a[TEMPERATURE] == 0 and TOOL_DEFINITIONS not in a


def _tool_check(case: ModelCase, store: Store, key: str, choice: str) -> ChatResponse | None:
    prompt = PROMPTS[key]
    out, _, run_id = _call(case.model, store, prompt, tools=TOOLS,
                           sampling=Sampling(max_tokens=case.max_tokens, temperature=0, tool_choice=choice))
    if _allowed_failure(case, store, run_id, prompt, out):
        return None
    assert isinstance(out, ChatResponse), repr(out)
    a = _assert_recorded(store, run_id, case.model, prompt, out)
    assert a[TOOL_DEFINITIONS] == [t.to_dict() for t in TOOLS] and a[TOOL_CHOICE] == choice
    return out


def _assert_calls(out: ChatResponse, names: set[str]) -> None:
    calls = out.message.tool_calls
    assert calls and out.finish_reason == "tool_calls", (out.message, out.finish_reason)
    assert len({c.id for c in calls}) == len(calls) and all(c.id for c in calls), calls
    specs = {t.name: t for t in TOOLS}
    for c in calls:
        assert c.name in names, f"called {c.name!r}, expected one of {sorted(names)}"
        _valid(c.arguments, specs[c.name].parameters)


def check_tool_choice_required(case: ModelCase, store: Store) -> None:
    """``tool_choice="required"``: tool calls to offered tools, arguments valid, ``finish_reason`` tool_calls."""
    out = _tool_check(case, store, "tool", "required")
    if out is not None:
        _assert_calls(out, {t.name for t in TOOLS})


def check_tool_choice_named(case: ModelCase, store: Store) -> None:
    """``tool_choice=<name>``: every call is to that tool."""
    out = _tool_check(case, store, "named", "add")
    if out is not None:
        _assert_calls(out, {"add"})


def check_tool_choice_none(case: ModelCase, store: Store) -> None:
    """``tool_choice="none"`` with tools offered: a text reply, no tool calls."""
    out = _tool_check(case, store, "none", "none")
    if out is not None:
        assert not out.message.tool_calls and out.finish_reason in ("stop", "length"), out


def check_unknown_tool_choice_is_refused(case: ModelCase, store: Store) -> None:
    """A ``tool_choice`` naming no offered tool is a non-retryable :class:`ModelError`, recorded."""
    prompt = PROMPTS["tool"]
    out, _, run_id = _call(case.model, store, prompt, tools=TOOLS,
                           sampling=Sampling(max_tokens=case.max_tokens, tool_choice="no_such_tool"))
    assert isinstance(out, ModelError) and not out.retryable and "no_such_tool" in str(out), repr(out)
    a = _assert_failure(store, run_id, case.model, prompt, out)
    assert a[ATTEMPT] == 1


def check_response_schema(case: ModelCase, store: Store) -> None:
    """``response_schema``: the reply is JSON on the schema, ``parsed`` holds it, and both are recorded."""
    prompt = PROMPTS["schema"]
    out, _, run_id = _call(case.model, store, prompt, response_schema=ANSWER_SCHEMA,
                           sampling=Sampling(max_tokens=case.max_tokens, temperature=0))
    if _allowed_failure(case, store, run_id, prompt, out):
        return
    assert isinstance(out, ChatResponse), repr(out)
    assert out.parsed is not None and json.loads(out.message.content) == out.parsed, out
    _valid(out.parsed, ANSWER_SCHEMA)
    a = _assert_recorded(store, run_id, case.model, prompt, out)
    assert a[RESPONSE_SCHEMA] == ANSWER_SCHEMA and a[PARSED] == out.parsed


def check_off_schema_reply_raises(case: ModelCase, store: Store) -> None:
    """A reply that is not on the requested schema is a retryable :class:`ModelOutputError`, recorded."""
    if case.off_schema is None:
        return
    prompt = PROMPTS["schema"]
    out, _, run_id = _call(case.off_schema, store, prompt, response_schema=ANSWER_SCHEMA,
                           sampling=Sampling(max_tokens=case.max_tokens))
    assert isinstance(out, ModelOutputError) and out.retryable, repr(out)
    _assert_failure(store, run_id, case.off_schema, prompt, out)


def check_failure_is_recorded(case: ModelCase, store: Store) -> None:
    """A failing call raises :class:`ModelError` and is one ``model_call`` with the error (attempts before it
    are ``error`` events)."""
    if case.failing is None:
        return
    prompt = PROMPTS["plain"]
    out, _, run_id = _call(case.failing, store, prompt, sampling=Sampling(max_tokens=case.max_tokens))
    assert isinstance(out, ModelError), repr(out)
    _assert_failure(store, run_id, case.failing, prompt, out)


Check = Callable[[ModelCase, Store], None]
CHECKS: list[Check] = [
    check_is_a_chat_model, check_answer_is_one_model_call, check_tool_choice_required, check_tool_choice_named,
    check_tool_choice_none, check_unknown_tool_choice_is_refused, check_response_schema,
    check_off_schema_reply_raises, check_failure_is_recorded,
]
"""Every check, in order."""

__all__ = ["ADD", "ANSWER_SCHEMA", "CHECKS", "ECHO", "PROMPTS", "TOOLS", "Check", "ModelCase"]
