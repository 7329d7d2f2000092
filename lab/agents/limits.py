"""Limits every loop obeys (steps, tokens, wall time, working time), and how a hit is recorded."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from lab.traces.schema import EventKind


@dataclass(frozen=True, slots=True)
class Limits:
    """Budgets on one attempt; ``None`` means unlimited.

    Attributes:
        steps: Agent steps (model turns; for DERA, dialog rounds).
        tokens: Model tokens, input and output together.
        wall_time_s: Wall-clock seconds since the run was created (pauses count).
        working_time_s: Pause-free working seconds (the run's :class:`~lab.traces.WorkClock`).
        invalid_replies: Consecutive replies that are not a valid tool call before the run stops.
    """

    steps: int | None = 30
    tokens: int | None = None
    wall_time_s: float | None = None
    working_time_s: float | None = None
    invalid_replies: int = 3

    @classmethod
    def from_budgets(cls, budgets: Any, **overrides: Any) -> Limits:
        """Limits from a task's :class:`lab.tasks.Budgets` (or a dict of the same names), then overrides.

        ``None`` in ``overrides`` keeps the budget's value.
        """
        b = budgets if isinstance(budgets, dict) else (budgets.model_dump() if budgets is not None else {})
        values = {k: b[k] for k in ("steps", "tokens", "wall_time_s", "working_time_s") if b.get(k) is not None}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def exceeded(self, *, steps: int, tokens: int, created_at: float, working_s: float) -> tuple[str, float, float] | None:
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


def record_limit(recorder: Any, name: str, limit: float, used: float, *, agent: str | None = None) -> None:
    """Record that a limit was hit (a ``limit`` event)."""
    recorder.emit(EventKind.LIMIT, {"lab.limit.name": name, "lab.limit.value": limit,
                                    "lab.limit.used": round(used, 3) if isinstance(used, float) else used},
                  agent=agent)
