"""The ``submit`` tools: how an agent hands in its final answer (the loop ends on a valid submit)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import Field

from lab.tools.base import tool

SUBMIT = "submit"
"""Name of the tool that ends a run; loops look for it."""


@tool(name=SUBMIT)
def submit(answer: Annotated[str, Field(max_length=2000)]) -> str:
    """Submit the final answer; this ends the task.

    Args:
        answer: The final answer.
    """
    return answer


@tool(name=SUBMIT)
def submit_json(answer: Annotated[str, Field(max_length=2000)]) -> str:
    """Submit the final answer as JSON text (for example {"accuracy": 0.5}, or null); this ends the task.

    Args:
        answer: The answer as JSON text, double-quoted keys.
    """
    return answer


def parse_answer(text: str) -> Any:
    """A submitted JSON answer as a Python value (the text itself when it is not JSON)."""
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text
