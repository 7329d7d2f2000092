"""How a loop records a hit limit (the limits themselves: :class:`lab.limits.Limits`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.limits import Limits
from lab.traces.schema import limit as limit_event

if TYPE_CHECKING:
    from lab.traces.recorder import RunRecorder

__all__ = ["Limits", "record_limit"]


def record_limit(recorder: RunRecorder, name: str, limit: float, used: float, *, agent: str | None = None) -> None:
    """Record that a limit was hit (a ``limit`` event)."""
    recorder.emit(*limit_event(name=name, value=limit, used=round(used, 3) if isinstance(used, float) else used),
                  agent=agent)
