"""Tool calls and JSON replies as JSON Schemas, bounded so a token budget always fits a whole reply.

Local models are constrained to these schemas with xgrammar; servers without native tool calls get them
as ``response_format``. The reply format is one JSON object: ``{"name": <tool>, "arguments": {...}}`` for
a tool call, ``{"answer": "..."}`` for a plain answer (``tool_choice="auto"``), or the response schema's
own shape.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from lab.models.base import Message, ToolCall, ToolSpec
from lab.models.errors import ModelError, ModelOutputError

DEFAULT_STRING_CHARS = 256
MIN_STRING_CHARS = 64
"""The shortest cap put on a string to fit a budget: below it answers would be cut to uselessness, so
:func:`bound_schema` raises :class:`ReplyBudgetError` instead."""
DEFAULT_ARRAY_ITEMS = 8
NUMBER_BOUND = 10**9
_NUMBER_CHARS = 18  # "-1000000000.123456"


def reply_schema(tools: list[ToolSpec] | None, tool_choice: str | None,
                 response_schema: dict[str, Any] | None) -> dict[str, Any] | None:
    """The JSON Schema a constrained reply must follow (``None``: free text).

    Args:
        tools: Tools the model may call.
        tool_choice: ``auto`` (default with tools), ``required``, ``none`` or a tool name.
        response_schema: JSON Schema of a non-tool answer.

    Raises:
        ModelError: ``tool_choice`` names no offered tool.
    """
    choice = tool_choice or "auto"
    answer = response_schema if response_schema is not None else None
    if not tools or choice == "none":
        return answer
    offered = {t.name: t for t in tools}
    if choice not in ("auto", "required"):
        if choice not in offered:
            raise ModelError(f"tool_choice {choice!r} is not one of the offered tools {sorted(offered)}")
        offered = {choice: offered[choice]}
    branches = [{"type": "object",
                 "properties": {"name": {"const": t.name}, "arguments": t.parameters or {"type": "object"}},
                 "required": ["name", "arguments"], "additionalProperties": False}
                for t in offered.values()]
    if choice == "auto":
        branches.append(answer or {"type": "object", "properties": {"answer": {"type": "string"}},
                                   "required": ["answer"], "additionalProperties": False})
    return branches[0] if len(branches) == 1 else {"anyOf": branches}


class ReplyBudgetError(ModelError):
    """``max_tokens`` is too small for a whole constrained reply without cutting strings below
    :data:`MIN_STRING_CHARS` characters (not retryable: raise the budget)."""


def bound_schema(schema: dict[str, Any], max_tokens: int, *, reserve: int = 0) -> dict[str, Any]:
    """A copy of ``schema`` whose every reply fits in ``max_tokens - reserve`` tokens (a token is at least one
    character; ``reserve``: tokens the caller keeps, e.g. for end-of-sequence), by capping unbounded strings,
    arrays and numbers.

    Strings get at most :data:`DEFAULT_STRING_CHARS` characters and arrays :data:`DEFAULT_ARRAY_ITEMS`
    items, fewer when the budget needs it, but strings never fewer than :data:`MIN_STRING_CHARS`
    (a string the schema itself caps lower keeps its own cap). Every reply to the bounded schema is
    valid for the original. The model records the bounded schema with each call.

    A schema without strings to cap (numbers, enums, strings capped lower by the schema itself) that does not
    fit comes back at its smallest bounds; the caller makes room for it.

    Raises:
        ReplyBudgetError: Even strings of :data:`MIN_STRING_CHARS` characters and arrays of one item do not
            fit; the message names the budget and the smallest one that fits.
    """
    limit, items = DEFAULT_STRING_CHARS, DEFAULT_ARRAY_ITEMS
    while True:
        bounded: dict[str, Any] = _bound(copy.deepcopy(schema), limit, items)
        if max_chars(bounded) < max_tokens - reserve:
            return bounded
        if limit > MIN_STRING_CHARS:
            limit = max(MIN_STRING_CHARS, limit // 2)
        elif items > 1:
            items = max(1, items // 2)
        elif max_chars(bounded) == max_chars(_bound(copy.deepcopy(schema), 10**9, 1)):
            return bounded  # no string is cut: the caller makes room for the longest reply
        else:
            raise ReplyBudgetError(
                f"max_tokens={max_tokens} is too small for this reply: it would cut strings below "
                f"{MIN_STRING_CHARS} characters (the reply schema needs up to {max_chars(bounded)} tokens with "
                f"{MIN_STRING_CHARS}-character strings and one array item); raise max_tokens to at least "
                f"{max_chars(bounded) + 1 + reserve}")


def _bound(s: Any, limit: int, items: int) -> Any:
    if not isinstance(s, dict):
        return s
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(s.get(key), list):
            s[key] = [_bound(b, limit, items) for b in s[key]]
    if isinstance(s.get("properties"), dict):
        s["properties"] = {k: _bound(v, limit, items) for k, v in s["properties"].items()}
    if isinstance(s.get("items"), dict):
        s["items"] = _bound(s["items"], limit, items)
    if isinstance(s.get("$defs"), dict):
        s["$defs"] = {k: _bound(v, limit, items) for k, v in s["$defs"].items()}
    if "enum" in s or "const" in s:
        return s
    types = s.get("type")
    types = types if isinstance(types, list) else [types]
    if "string" in types and "pattern" not in s and "format" not in s:
        s["maxLength"] = max(min(s.get("maxLength", limit), limit), s.get("minLength", 0))
    if "array" in types:
        s["maxItems"] = min(s.get("maxItems", items), items)
        if s.get("minItems", 0) > s["maxItems"]:
            s["maxItems"] = s["minItems"]
    if "integer" in types or "number" in types:
        if "minimum" not in s and "exclusiveMinimum" not in s:
            s["minimum"] = -NUMBER_BOUND
        if "maximum" not in s and "exclusiveMaximum" not in s:
            s["maximum"] = NUMBER_BOUND
    return s


def max_chars(s: Any) -> int:
    """An upper bound of the length of a JSON value (separators ``", "`` and ``": "``) valid for a bounded
    schema (a free-form object or an unbounded pattern counts as :data:`DEFAULT_STRING_CHARS`)."""
    if not isinstance(s, dict):
        return DEFAULT_STRING_CHARS
    if "const" in s:
        return len(json.dumps(s["const"]))
    if "enum" in s:
        return max((len(json.dumps(v)) for v in s["enum"]), default=4)
    for key in ("anyOf", "oneOf"):
        if isinstance(s.get(key), list):
            return max((max_chars(b) for b in s[key]), default=0)
    types = s.get("type")
    types = types if isinstance(types, list) else [types]
    sizes = []
    if "object" in types or "properties" in s:
        props = s.get("properties") or {}
        if props:
            sizes.append(2 + sum(len(json.dumps(k)) + 4 + max_chars(v) for k, v in props.items()))
        else:
            sizes.append(DEFAULT_STRING_CHARS)
    if "array" in types:
        sizes.append(2 + s.get("maxItems", DEFAULT_ARRAY_ITEMS) * (max_chars(s.get("items")) + 2))
    if "string" in types:
        sizes.append(s.get("maxLength", DEFAULT_STRING_CHARS) + 2)
    if "integer" in types or "number" in types:
        sizes.append(_NUMBER_CHARS)
    if "boolean" in types:
        sizes.append(5)
    if "null" in types:
        sizes.append(4)
    return max(sizes, default=DEFAULT_STRING_CHARS)


def instructions(tools: list[ToolSpec] | None, tool_choice: str | None,
                 response_schema: dict[str, Any] | None) -> str:
    """A short system-prompt section telling the model the reply format (for templates without tools)."""
    parts = []
    choice = tool_choice or "auto"
    if tools and choice != "none":
        lines = [f"- {t.name}: {t.description} Arguments: {json.dumps(t.parameters)}" for t in tools]
        parts.append("You can call these tools:\n" + "\n".join(lines))
        call = 'To call a tool, reply with {"name": "<tool>", "arguments": {...}}.'
        if choice == "auto":
            answer = ("reply with JSON matching " + json.dumps(response_schema) if response_schema
                      else 'reply with {"answer": "<your answer>"}')
            call += f" To answer without a tool, {answer}."
        parts.append(call)
    elif response_schema is not None:
        parts.append("Reply with JSON matching this schema: " + json.dumps(response_schema))
    return "\n".join(parts)


def parse_reply(text: str, tools: list[ToolSpec] | None, tool_choice: str | None,
                response_schema: dict[str, Any] | None, *, where: str) -> tuple[Message, Any]:
    """Turn a constrained JSON reply into an assistant message (and the parsed answer, if a schema was given).

    Args:
        text: The model's raw output.
        tools: The tools offered.
        tool_choice: The tool choice asked for (``None``: ``auto``).
        response_schema: The JSON Schema asked for, if any.
        where: Model name for error messages.

    Returns:
        ``(message, parsed)``.

    Raises:
        ModelOutputError: The text is not JSON or does not match the requested schema (retryable).
    """
    schema = reply_schema(tools, tool_choice, response_schema)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelOutputError(f"{where}: reply is not valid JSON ({e.msg} at char {e.pos}); "
                               f"it may be truncated: {text[:200]!r}", raw=text) from e
    if schema is not None:
        import jsonschema  # slow to import; only validation needs it

        try:
            jsonschema.validate(value, schema)
        except jsonschema.ValidationError as e:
            raise ModelOutputError(f"{where}: reply does not match the requested schema: {e.message}",
                                   raw=text) from e
    names = {t.name for t in tools or []} if (tool_choice or "auto") != "none" else set()
    if isinstance(value, dict) and value.get("name") in names and isinstance(value.get("arguments"), dict) \
            and set(value) == {"name", "arguments"}:
        call = ToolCall(f"call_{uuid.uuid4().hex[:12]}", value["name"], value["arguments"])
        return Message("assistant", "", tool_calls=[call]), None
    if response_schema is None and isinstance(value, dict) and set(value) == {"answer"}:
        return Message("assistant", str(value["answer"])), None
    return Message("assistant", text), value


def validate_arguments(call: ToolCall, tools: list[ToolSpec], *, where: str) -> None:
    """Check a (server-made) tool call names an offered tool and matches its parameter schema.

    Raises:
        ModelOutputError: Unknown tool or arguments that do not match (retryable).
    """
    spec = next((t for t in tools if t.name == call.name), None)
    if spec is None:
        raise ModelOutputError(f"{where}: called unknown tool {call.name!r} (offered: "
                               f"{', '.join(t.name for t in tools)})", raw=json.dumps(call.arguments))
    import jsonschema

    try:
        jsonschema.validate(call.arguments, spec.parameters or {"type": "object"})
    except jsonschema.ValidationError as e:
        raise ModelOutputError(f"{where}: arguments of tool {call.name!r} do not match its schema: {e.message}",
                               raw=json.dumps(call.arguments)) from e
