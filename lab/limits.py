"""Limits on one attempt (steps, tokens, wall time, working time): what a task allows, what an experiment
overrides, what a loop obeys. One class for all three."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, NonNegativeFloat, PositiveInt

DEFAULT_STEPS = 30
"""Steps a loop takes when nothing sets a step limit."""


class Limits(BaseModel):
    """Limits on one attempt; ``None`` means unlimited.

    A task file's ``budgets:`` and an experiment's ``budgets:`` are :class:`Limits`; a loop's limits are the
    defaults overridden by the task's, then by the experiment's (:meth:`over`).

    Attributes:
        steps: Agent steps (model turns; for DERA, dialog rounds).
        tokens: Model tokens, input and output together.
        wall_time_s: Wall-clock seconds since the run was created (pauses count).
        working_time_s: Pause-free working seconds (what humans and agents are compared on).
        invalid_replies: Consecutive replies that are not a valid tool call before the run stops.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    steps: PositiveInt | None = DEFAULT_STEPS
    tokens: PositiveInt | None = None
    wall_time_s: NonNegativeFloat | None = None
    working_time_s: NonNegativeFloat | None = None
    invalid_replies: PositiveInt = 3

    def over(self, *others: Limits | Mapping[str, Any] | None) -> Limits:
        """These limits with the values each of ``others`` sets (and are not ``None``) taking precedence, in
        order (a dict gives values by name)."""
        values = self.model_dump()
        for other in others:
            if other is None:
                continue
            given = other if isinstance(other, Mapping) else other.model_dump(exclude_unset=True)
            values.update({k: v for k, v in given.items() if v is not None})
        return Limits(**values)

    def key(self) -> dict[str, Any]:
        """The values that identify these limits in a combination's key (what was set; the four budgets
        always present, so keys made before ``invalid_replies`` existed stay the same)."""
        set_values = self.model_dump(exclude_unset=True)
        return {"steps": None, "tokens": None, "wall_time_s": None, "working_time_s": None, **set_values}

    def to_dict(self) -> dict[str, Any]:
        """The limits as a plain dict (recorded in a run's loop description)."""
        return self.model_dump()

    def exceeded(self, *, steps: int, tokens: int, created_at: float,
                 working_s: float) -> tuple[str, float, float] | None:
        """The first limit reached, as ``(name, limit, used)``; ``None`` while within all limits.

        Args:
            steps: Steps taken so far.
            tokens: Tokens used so far.
            created_at: Unix time the run was created.
            working_s: Pause-free working seconds so far.
        """
        checks = (("steps", self.steps, steps), ("tokens", self.tokens, tokens),
                  ("wall_time_s", self.wall_time_s, time.time() - created_at),
                  ("working_time_s", self.working_time_s, working_s))
        for name, limit, used in checks:
            if limit is not None and used >= limit:
                return name, limit, used
        return None
