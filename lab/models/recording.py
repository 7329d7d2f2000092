"""How a model call becomes a ``model_call`` event (OpenTelemetry GenAI attribute names)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lab.models.base import ChatResponse, Message, Sampling, ToolSpec
from lab.secrets import redact
from lab.traces.schema import (
    ATTEMPT,
    BOUNDED_SCHEMA,
    FINISH_REASONS,
    INPUT_MESSAGES,
    INPUT_TOKENS,
    LATENCY,
    MAX_TOKENS,
    MODEL,
    OPERATION,
    OUTPUT_MESSAGES,
    OUTPUT_TOKENS,
    PARSED,
    RESPONSE_MODEL,
    RESPONSE_SCHEMA,
    RETRYABLE,
    SEED,
    SERVER,
    STOP,
    SYSTEM,
    TEMPERATURE,
    TOOL_CHOICE,
    TOOL_DEFINITIONS,
    TOP_P,
    EventKind,
    model_call,
)

if TYPE_CHECKING:
    from lab.traces.recorder import RunRecorder

__all__ = [  # the model_call keys, re-exported for the backends
    "ATTEMPT", "BOUNDED_SCHEMA", "FINISH_REASONS", "INPUT_MESSAGES", "INPUT_TOKENS", "LATENCY", "MAX_TOKENS", "MODEL",
    "OPERATION", "OUTPUT_MESSAGES", "OUTPUT_TOKENS", "PARSED", "RESPONSE_MODEL", "RESPONSE_SCHEMA", "RETRYABLE",
    "SEED", "SERVER", "STOP", "SYSTEM", "TEMPERATURE", "TOOL_CHOICE", "TOOL_DEFINITIONS", "TOP_P", "call_attrs",
    "record_call", "response_from_attrs",
]


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
    s = sampling or Sampling()
    if response is not None and latency is None:
        latency = response.latency
    return model_call(
        system=system, model=model, input_messages=[m.to_dict() for m in messages],
        tool_definitions=[t.to_dict() for t in tools] if tools else None, response_schema=response_schema,
        temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, seed=s.seed, stop_sequences=s.stop,
        tool_choice=s.tool_choice, server=redact(server) if server else None, attempt=attempt,
        output_messages=[response.message.to_dict()] if response is not None else None,
        response_model=(response.model or model) if response is not None else None,
        finish_reasons=["error"] if error is not None else [response.finish_reason] if response is not None else None,
        input_tokens=response.usage.input_tokens if response is not None else None,
        output_tokens=response.usage.output_tokens if response is not None else None,
        parsed=response.parsed if response is not None else None,
        error_type=type(error).__name__ if error is not None else None,
        error_message=redact(str(error)) if error is not None else None,
        retryable=bool(getattr(error, "retryable", False)) if error is not None else None, latency=latency,
        extra=response.attrs if response is not None else None).attrs


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

