"""Reply schemas for tool calls and JSON answers, bounded to a token budget."""

from __future__ import annotations

import json

import jsonschema
import pytest

from lab.models import ModelError, ModelOutputError, ToolSpec
from lab.models.constrained import (
    MIN_STRING_CHARS,
    ReplyBudgetError,
    bound_schema,
    max_chars,
    parse_reply,
    reply_schema,
)

SEARCH = ToolSpec("search", "Search", {"type": "object", "properties": {
    "query": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
    "limit": {"type": "integer"}}, "required": ["query"]})
SUBMIT = ToolSpec("submit", "Submit", {"type": "object", "properties": {"answer": {"type": "string"}}})


def test_reply_schema_by_tool_choice():
    auto = reply_schema([SEARCH, SUBMIT], None, None)
    assert len(auto["anyOf"]) == 3 and auto["anyOf"][2]["required"] == ["answer"]
    assert len(reply_schema([SEARCH, SUBMIT], "required", None)["anyOf"]) == 2
    one = reply_schema([SEARCH, SUBMIT], "submit", None)
    assert one["properties"]["name"] == {"const": "submit"}
    assert reply_schema([SEARCH], "none", {"type": "object"}) == {"type": "object"}
    assert reply_schema(None, None, None) is None
    with pytest.raises(ModelError, match="not one of the offered tools"):
        reply_schema([SEARCH], "delete", None)


@pytest.mark.parametrize("budget", [24, 101, 300, 512, 4096])
def test_bound_schema_fits_budget_and_stays_a_subset(budget):
    schema = reply_schema([SEARCH, SUBMIT], "required", None)
    try:
        bounded = bound_schema(schema, budget)
    except ReplyBudgetError as e:  # strings would be cut below 64 characters: a clear error, no silent cut
        assert f"max_tokens={budget} is too small" in str(e) and "at least" in str(e) and not e.retryable
        need = int(str(e).rsplit("at least ", 1)[1])
        assert need > budget and bound_schema(schema, need)  # the budget it names is enough
        return
    q = bounded["anyOf"][0]["properties"]["arguments"]["properties"]
    assert max_chars(bounded) < budget
    assert MIN_STRING_CHARS <= q["query"]["maxLength"] <= 256 and q["tags"]["maxItems"] <= 8
    assert q["limit"]["minimum"] == -(10**9)
    # the longest reply the bounded schema allows is valid for the original and no longer than the bound
    longest = {"name": "search", "arguments": {"query": "x" * q["query"]["maxLength"],
                                                "tags": ["y" * q["tags"]["items"]["maxLength"]] * q["tags"]["maxItems"],
                                                "limit": -(10**9)}}
    jsonschema.validate(longest, schema)
    assert len(json.dumps(longest)) <= max_chars(bounded)
    assert "maxLength" not in schema["anyOf"][0]["properties"]["arguments"]["properties"]["query"]  # copy


def test_a_string_the_schema_caps_lower_keeps_its_cap():
    schema = {"type": "object", "properties": {"code": {"type": "string", "maxLength": 5},
                                               "text": {"type": "string"}}}
    bounded = bound_schema(schema, 100)
    assert bounded["properties"]["code"]["maxLength"] == 5 and bounded["properties"]["text"]["maxLength"] == 64


def test_parse_reply_tool_call_answer_and_errors():
    msg, parsed = parse_reply('{"name": "submit", "arguments": {"answer": "42"}}', [SEARCH, SUBMIT], None, None,
                              where="m")
    assert msg.tool_calls[0].name == "submit" and msg.tool_calls[0].arguments == {"answer": "42"} and parsed is None
    msg, _ = parse_reply('{"answer": "hi"}', [SEARCH], None, None, where="m")
    assert msg.content == "hi" and not msg.tool_calls
    msg, parsed = parse_reply('{"x": 1}', None, None, {"type": "object"}, where="m")
    assert parsed == {"x": 1} and msg.content == '{"x": 1}'
    with pytest.raises(ModelOutputError, match="m: reply is not valid JSON"):
        parse_reply('{"name": "sub', [SUBMIT], None, None, where="m")
    with pytest.raises(ModelOutputError, match="does not match"):
        parse_reply('{"name": "search", "arguments": {}}', [SEARCH], "required", None, where="m")
