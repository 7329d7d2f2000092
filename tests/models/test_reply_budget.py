"""No silent truncation: a local model records the bounded schema it used, and a budget that would cut strings
below a useful length is a clear error naming the budget (real SmolLM2)."""

from __future__ import annotations

import pytest

from lab.agents import DeraAgent, Limits
from lab.models import Message, Sampling
from lab.models.constrained import MIN_STRING_CHARS, ReplyBudgetError
from lab.traces import RunRecorder

SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
          "additionalProperties": False}


def test_bounded_schema_is_recorded(store, smollm2):
    rec = RunRecorder.start(store, {"task": "t"})
    smollm2.chat([Message("user", "Name a colour.")], response_schema=SCHEMA,
                 sampling=Sampling(max_tokens=120, temperature=0), recorder=rec)
    (call,) = store.events(rec.run_id, kinds=["model_call"])
    assert call.attrs["lab.request.response_schema"] == SCHEMA  # what was asked
    bounded = call.attrs["lab.request.bounded_schema"]        # what the reply was constrained to
    assert bounded["properties"]["answer"]["maxLength"] == 64


def test_a_budget_too_small_is_an_error_naming_it(store, smollm2):
    rec = RunRecorder.start(store, {"task": "t"})
    with pytest.raises(ReplyBudgetError, match=rf"max_tokens=40 is too small .* below {MIN_STRING_CHARS} characters"):
        smollm2.chat([Message("user", "Name a colour.")], response_schema=SCHEMA,
                     sampling=Sampling(max_tokens=40), recorder=rec)
    (call,) = store.events(rec.run_id, kinds=["model_call"])
    assert call.attrs["error.type"] == "ReplyBudgetError"


def test_dera_at_a_tiny_budget_fails_clearly_instead_of_cutting_answers(store, smollm2):
    agent = DeraAgent(smollm2, limits=Limits(steps=1), sampling=Sampling(max_tokens=48), message_max_chars=120)
    res = agent.start(store, "What causes scurvy?").run()
    assert res.status == "failed" and "max_tokens=48 is too small" in res.error
