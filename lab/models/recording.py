"""How a model call becomes a ``model_call`` event (OpenTelemetry GenAI attribute names)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lab.models.base import ChatResponse, Message, Sampling, ToolSpec
from lab.secrets import redact
from lab.traces.schema import (
    FINISH_REASONS,
    INPUT_TOKENS,
    MODEL,
    OUTPUT_TOKENS,
    RESPONSE_MODEL,
    SYSTEM,
    TEMPERATURE,
    EventKind,
)

if TYPE_CHECKING:
    from lab.traces.recorder import RunRecorder

OPERATION = "gen_ai.operation.name"
INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
TOP_P = "gen_ai.request.top_p"
MAX_TOKENS = "gen_ai.request.max_tokens"
SEED = "gen_ai.request.seed"
STOP = "gen_ai.request.stop_sequences"
SERVER = "server.address"
RESPONSE_SCHEMA = "lab.request.response_schema"
BOUNDED_SCHEMA = "lab.request.bounded_schema"
"""The schema a local model's reply was actually constrained to (string and array bounds for the budget)."""
TOOL_CHOICE = "lab.request.tool_choice"
LATENCY = "lab.latency_s"
PARSED = "lab.response.parsed"
ATTEMPT = "lab.attempt"
RETRYABLE = "lab.retryable"


def call_attrs(
    *,
    system: str,
    model: str,
    messages: list[Message],
    tools: list[ToolSpec] | None,
    response_schema: dict[str, Any] | None,
    sampling: Sampling | None,
    response: ChatResponse | None = None,
    error: BaseException | None = None,
    latency: float | None = None,
    server: str | None = None,
    attempt: int | None = None,
) -> dict[str, Any]:
    """The attributes of one ``model_call`` event (request, and response or error).

    Args:
        system: Backend family (``transformers``, ``openai``, ``scripted``).
        model: The requested model name.
        messages: Request messages.
        tools: Tool definitions offered.
        response_schema: Requested JSON Schema.
        sampling: Sampling parameters.
        response: The response, when the call succeeded.
        error: The failure, when it did not.
        latency: Seconds the call took (defaults to ``response.latency``).
        server: Server address for HTTP backends (never with credentials).
        attempt: 1-based attempt number when retried.

    Returns:
        A JSON-able dict; secrets are redacted from every string.
    """
    a: dict[str, Any] = {OPERATION: "chat", SYSTEM: system, MODEL: model,
                         INPUT_MESSAGES: [m.to_dict() for m in messages]}
    if tools:
        a[TOOL_DEFINITIONS] = [t.to_dict() for t in tools]
    if response_schema is not None:
        a[RESPONSE_SCHEMA] = response_schema
    s = sampling or Sampling()
    for key, value in ((TEMPERATURE, s.temperature), (TOP_P, s.top_p), (MAX_TOKENS, s.max_tokens),
                       (SEED, s.seed), (STOP, s.stop), (TOOL_CHOICE, s.tool_choice)):
        if value is not None:
            a[key] = value
    if server:
        a[SERVER] = redact(server)
    if attempt is not None:
        a[ATTEMPT] = attempt
    if response is not None:
        a[OUTPUT_MESSAGES] = [response.message.to_dict()]
        a[RESPONSE_MODEL] = response.model or model
        a[FINISH_REASONS] = [response.finish_reason]
        a[INPUT_TOKENS] = response.usage.input_tokens
        a[OUTPUT_TOKENS] = response.usage.output_tokens
        if response.parsed is not None:
            a[PARSED] = response.parsed
        a.update(response.attrs)
        latency = response.latency if latency is None else latency
    if error is not None:
        a[FINISH_REASONS] = ["error"]
        a["error.type"] = type(error).__name__
        a["error.message"] = redact(str(error))
        a[RETRYABLE] = bool(getattr(error, "retryable", False))
    if latency is not None:
        a[LATENCY] = latency
    return a


def record_call(recorder: RunRecorder | None, attrs: dict[str, Any], *, agent: str | None = None) -> None:
    """Emit a ``model_call`` event on ``recorder`` (no-op without one)."""
    if recorder is not None:
        recorder.emit(EventKind.MODEL_CALL, attrs, agent=agent)


def response_from_attrs(attrs: dict[str, Any]) -> ChatResponse:
    """Rebuild the :class:`ChatResponse` a recorded ``model_call`` event holds (for exact replay).

    Raises:
        KeyError: The event recorded a failed call (it has no output message).
    """
    from lab.models.base import ToolCall, Usage

    out = attrs[OUTPUT_MESSAGES][0]
    calls = [ToolCall(c.get("id", ""), c["function"]["name"], c["function"]["arguments"])
             for c in out.get("tool_calls") or []]
    msg = Message("assistant", out.get("content") or "", tool_calls=calls)
    return ChatResponse(
        msg,
        finish_reason=(attrs.get(FINISH_REASONS) or ["stop"])[0],
        usage=Usage(attrs.get(INPUT_TOKENS, 0), attrs.get(OUTPUT_TOKENS, 0)),
        latency=attrs.get(LATENCY, 0.0),
        model=attrs.get(RESPONSE_MODEL, attrs.get(MODEL, "")),
        parsed=attrs.get(PARSED),
    )

