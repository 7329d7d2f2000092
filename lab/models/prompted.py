"""Prompted tool calls and JSON for servers that do not honour ``tools`` or ``response_format``.

Some OpenAI-compatible servers accept ``tools`` and ``response_format`` but ignore them for some models
(``transformers serve`` with SmolLM2 answers in free text). :func:`chat_with_fallback` sends a request
natively first; when the server shows it ignored what was asked — no tool call where one was required, a
tool call written as text, or a reply that is not the requested JSON — it remembers that for the server
and model and asks again with the format described in the prompt instead: the reply's JSON is found in the
text, validated against the same schema, and asked for again with the validation error when it is wrong.

The ``model_call`` event of a prompted call carries ``lab.fallback: "prompted"``, why
(``lab.fallback.reason``), how many attempts it took and the invalid replies on the way.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lab.models.base import ChatModel, ChatResponse, Message, Sampling, ToolSpec, Usage
from lab.models.constrained import instructions, parse_reply
from lab.models.errors import ModelOutputError
from lab.models.recording import call_attrs, record_call
from lab.traces.schema import FALLBACK, FALLBACK_ATTEMPTS, FALLBACK_INVALID, FALLBACK_REASON

if TYPE_CHECKING:
    from lab.traces.recorder import RunRecorder

__all__ = ["FALLBACK", "chat_with_fallback", "ignored_features", "prompted_chat"]

ATTEMPTS = 3
"""Prompted replies asked for per call at most (the first, then again with the validation error)."""
_ignored: dict[tuple[tuple[str, ...], str], set[str]] = {}
_lock = threading.Lock()

NativeChat = Callable[..., ChatResponse]


def _key(model: ChatModel) -> tuple[tuple[str, ...], str]:
    return tuple(getattr(model, "base_urls", ()) or ()), str(getattr(model, "model", getattr(model, "name", "")))


def ignored_features(model: ChatModel) -> set[str]:
    """What the model's server was seen to ignore: ``tools`` and/or ``json`` (this process)."""
    with _lock:
        return set(_ignored.get(_key(model), set()))


def _mark(model: ChatModel, feature: str) -> None:
    with _lock:
        _ignored.setdefault(_key(model), set()).add(feature)


def _needs(model: ChatModel, tools: list[ToolSpec] | None, response_schema: dict[str, Any] | None,
           sampling: Sampling) -> str | None:
    """What the request relies on the server for: native ``tools``, a JSON ``response_format``, or nothing."""
    if tools and (sampling.tool_choice or "auto") != "none":
        return "tools" if getattr(model, "native_tools", True) else "json"
    return "json" if response_schema is not None else None


def chat_with_fallback(model: ChatModel, native: NativeChat, messages: list[Message], *,
                       tools: list[ToolSpec] | None = None, response_schema: dict[str, Any] | None = None,
                       sampling: Sampling | None = None, recorder: RunRecorder | None = None,
                       agent: str | None = None, attempts: int | None = None) -> ChatResponse:
    """``native(...)`` (a backend's own chat), falling back to :func:`prompted_chat` when the server ignores
    the tools or JSON schema asked for (see the module doc).

    Raises:
        ModelError: As ``native`` does.
        ModelOutputError: The prompted replies stayed invalid after ``attempts`` (default :data:`ATTEMPTS`)
            tries (retryable).
    """
    sampling = sampling or Sampling()
    need = _needs(model, tools, response_schema, sampling)
    if need is None or need not in ignored_features(model):
        try:
            resp = native(messages, tools=tools, response_schema=response_schema, sampling=sampling,
                          recorder=recorder, agent=agent)
        except ModelOutputError as e:
            if need != "json" or not _ignored_schema(e):
                raise
            _mark(model, "json")
            reason = f"the server ignored response_format: {e}"
        else:
            if need != "tools" or resp.message.tool_calls or not _ignored_tools(resp, tools, sampling):
                return resp
            _mark(model, "tools")
            reason = "the server ignored the tools: the reply has no tool call"
    else:
        reason = f"the server was seen to ignore {need}"
    return prompted_chat(model, native, messages, tools=tools, response_schema=response_schema, sampling=sampling,
                         recorder=recorder, agent=agent, reason=reason, attempts=attempts)


def _ignored_schema(e: ModelOutputError) -> bool:
    """Whether a reply that failed its JSON schema shows the server ignored ``response_format``: it is free
    text, or JSON of another shape. A reply that starts as JSON and breaks off (cut short) shows nothing."""
    if "does not match the requested schema" in str(e):
        return True
    return "reply is not valid JSON" in str(e) and not e.raw.lstrip().startswith(("{", "["))


def _ignored_tools(resp: ChatResponse, tools: list[ToolSpec] | None, sampling: Sampling) -> bool:
    """A reply without tool calls shows ignored tools when a call was required, or when its text holds one."""
    if (sampling.tool_choice or "auto") != "auto":
        return True
    value = _find_json(resp.message.content)
    names = {t.name for t in tools or []}
    return isinstance(value, dict) and value.get("name") in names and isinstance(value.get("arguments"), dict)


def prompted_chat(model: ChatModel, native: NativeChat, messages: list[Message], *, tools: list[ToolSpec] | None,
                  response_schema: dict[str, Any] | None, sampling: Sampling, recorder: RunRecorder | None = None,
                  agent: str | None = None, reason: str = "", attempts: int | None = None) -> ChatResponse:
    """Ask for the tool call or JSON reply in the prompt, with plain text requests; validate and ask again.

    Args:
        model: The backend (its ``name``, ``system``).
        native: The backend's own chat, called without tools or schema.
        messages: The conversation (tool calls and results are written as text).
        tools: The tools the caller offered.
        response_schema: The JSON Schema the reply must match, if any.
        sampling: The caller's sampling settings (the tool choice among them).
        recorder: Where the one ``model_call`` event goes.
        agent: The agent the event is recorded for.
        reason: Why the fallback is used (recorded).
        attempts: Replies asked for at most (default :data:`ATTEMPTS`).

    Raises:
        ModelOutputError: No valid reply in ``attempts`` tries (retryable).
    """
    t0 = time.perf_counter()
    attempts = attempts or ATTEMPTS
    choice = sampling.tool_choice
    plain = copy.copy(sampling)
    plain.tool_choice = None
    convo = _as_text(messages, instructions(tools, choice, response_schema), _examples(tools, choice, response_schema))
    usage, invalid = Usage(), []
    where = getattr(model, "name", "model")
    resp: ChatResponse | None = None
    error: ModelOutputError | None = None
    for n in range(1, attempts + 1):
        resp = native(convo, tools=None, response_schema=None, sampling=plain, recorder=None, agent=agent)
        usage = Usage(usage.input_tokens + resp.usage.input_tokens, usage.output_tokens + resp.usage.output_tokens)
        text = resp.message.content
        try:
            value = _find_json(text)
            if value is None:
                raise ModelOutputError(f"{where}: the reply holds no JSON object", raw=text)
            msg, parsed = parse_reply(json.dumps(value), tools, choice, response_schema, where=where)
        except ModelOutputError as e:
            error = e
            invalid.append({"reply": text[:500], "error": str(e)[:300]})
            convo = [*convo, Message("assistant", text),
                     Message("user", f"That reply is not valid: {e}. Reply again with only the JSON object.")]
            continue
        out = ChatResponse(msg, finish_reason="tool_calls" if msg.tool_calls else resp.finish_reason, usage=usage,
                           latency=time.perf_counter() - t0, model=resp.model, parsed=parsed,
                           attrs=_attrs(reason, n, invalid))
        record_call(recorder, call_attrs(system=getattr(model, "system", "openai"), model=where, messages=messages,
                                         tools=tools, response_schema=response_schema, sampling=sampling,
                                         response=out, attempt=n), agent=agent)
        return out
    assert error is not None
    err = ModelOutputError(f"{error} (prompted fallback, {attempts} attempts)", raw=error.raw)
    attrs = call_attrs(system=getattr(model, "system", "openai"), model=where, messages=messages, tools=tools,
                       response_schema=response_schema, sampling=sampling, error=err,
                       latency=time.perf_counter() - t0, attempt=attempts)
    record_call(recorder, {**attrs, **_attrs(reason, attempts, invalid)}, agent=agent)
    raise err


def _attrs(reason: str, attempts: int, invalid: list[dict[str, str]]) -> dict[str, Any]:
    a: dict[str, Any] = {FALLBACK: "prompted", FALLBACK_REASON: reason, FALLBACK_ATTEMPTS: attempts}
    if invalid:
        a[FALLBACK_INVALID] = invalid
    return a


def _example(schema: Any) -> Any:
    """A JSON value of the schema's shape with placeholder values (small models follow an example better
    than a schema)."""
    if not isinstance(schema, dict):
        return "..."
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return _example(schema[key][0])
    t = schema.get("type")
    t = t[0] if isinstance(t, list) else t
    if t == "object" or "properties" in schema:
        return {k: _example(v) for k, v in (schema.get("properties") or {}).items()}
    if t == "array":
        return [_example(schema.get("items"))]
    if not isinstance(t, str):
        return "..."
    return {"string": "...", "number": 0, "integer": 0, "boolean": True, "null": None}.get(t, "...")


def _examples(tools: list[ToolSpec] | None, choice: str | None, response_schema: dict[str, Any] | None) -> str:
    if tools and (choice or "auto") != "none":
        shown = [t for t in tools if choice in (None, "auto", "required") or t.name == choice]
        lines = [json.dumps({"name": t.name, "arguments": _example(t.parameters or {})}) for t in shown]
        return "\nFor example:\n" + "\n".join(lines)
    if response_schema is not None:
        return "\nFor example: " + json.dumps(_example(response_schema))
    return ""


def _as_text(messages: list[Message], extra: str, example: str) -> list[Message]:
    """The conversation with tool calls and results as plain text, the reply format in the system prompt,
    and the example repeated after the last message (small models heed the end of the prompt most)."""
    out = []
    for m in messages:
        if m.tool_calls:
            calls = [json.dumps({"name": c.name, "arguments": c.arguments}) for c in m.tool_calls]
            out.append(Message("assistant", "\n".join(filter(None, [m.content, *calls]))))
        elif m.role == "tool":
            out.append(Message("user", f"Tool result: {m.content}"))
        else:
            out.append(Message(m.role, m.content))
    if extra:
        extra += f"{example}\nReply with only the JSON object, nothing before or after it."
        if out and out[0].role == "system":
            out[0] = Message("system", f"{out[0].content}\n\n{extra}")
        else:
            out.insert(0, Message("system", extra))
        tail = f"Reply with only one JSON object.{example}"
        if out[-1].role == "user":
            out[-1] = Message("user", f"{out[-1].content}\n\n{tail}")
        else:
            out.append(Message("user", tail))
    return out


def _find_json(text: str) -> Any:
    """The first JSON object in ``text`` (also inside code fences or prose); ``None`` when there is none."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
            return value
        except ValueError:
            start = text.find("{", start + 1)
    return None
