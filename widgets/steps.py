"""A run's events as display steps: tree depth, text, tokens and time per step; search; alignment of two runs.

Pure functions over :class:`lab.traces.Event` lists, so the trace viewer stays fast on 5,000-event runs
and is testable without a browser.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any

from lab.traces import Event

# Attribute keys that hold the human-readable text of an event, most specific first.
_TEXT_KEYS = (
    "content", "lab.content", "gen_ai.completion", "lab.answer", "output", "lab.stdout", "stdout",
    "gen_ai.evaluation.explanation", "error.message", "lab.command", "command", "gen_ai.prompt",
)
_INPUT_TOKENS = "gen_ai.usage.input_tokens"
_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"


@dataclass(slots=True)
class Step:
    """One event as the trace viewer shows it.

    Attributes:
        seq: The event's sequence number in its run.
        kind: Event kind (``agent_message``, ``tool_call`` ...).
        agent: Agent or role name ('' when none).
        depth: Nesting depth in the span tree (0 for top-level events).
        title: One-line heading (span name, tool name, scorer ...).
        text: Full text body (may be long; the renderer collapses it).
        elapsed: Working time at the event (seconds since the run started).
        dt: Working time since the previous event (seconds).
        tokens_in: Input tokens of a model call (0 when none).
        tokens_out: Output tokens of a model call (0 when none).
        span_id: The event's span.
        parent_id: Its parent span.
    """

    seq: int
    kind: str
    agent: str
    depth: int
    title: str
    text: str
    elapsed: float
    dt: float
    tokens_in: int
    tokens_out: int
    span_id: str | None
    parent_id: str | None

    @property
    def signature(self) -> tuple[str, str, str]:
        """What must match for two steps of different runs to be aligned."""
        return (self.kind, self.agent, self.title)


def _title(ev: Event) -> str:
    a = ev.attrs
    for key in ("lab.span.name", "gen_ai.tool.name", "gen_ai.evaluation.name", "gen_ai.request.model",
                "lab.action", "lab.status", "error.type"):
        if a.get(key) not in (None, ""):
            title = str(a[key])
            if key == "gen_ai.evaluation.name":
                value = a.get("gen_ai.evaluation.score.value")
                label = a.get("gen_ai.evaluation.score.label")
                title += f" = {value if value is not None else label}"
            return title
    return ""


def _text(attrs: dict[str, Any]) -> str:
    out = attrs.get("gen_ai.output.messages")
    if isinstance(out, list) and out:  # a model call: what the model said (tool calls included)
        return "\n".join(str(m.get("content") or m.get("tool_calls") or "") if isinstance(m, dict) else str(m)
                         for m in out)
    for key in _TEXT_KEYS:
        v = attrs.get(key)
        if v not in (None, ""):
            return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, indent=1, default=str)
    if not attrs:
        return ""
    return json.dumps(attrs, ensure_ascii=False, indent=1, default=str)


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def build_steps(events: list[Event], *, start: list[Step] | None = None) -> list[Step]:
    """Turn events (in sequence order) into steps.

    Args:
        events: A run's events, ordered by ``seq``.
        start: Steps already built for earlier events of the same run (for live, incremental updates);
            they are extended in place and returned.

    Returns:
        The steps, one per event.
    """
    steps = start if start is not None else []
    depth_of: dict[str, int] = {s.span_id: s.depth for s in steps if s.span_id}
    prev = steps[-1].elapsed if steps else 0.0
    for ev in events:
        depth = depth_of.get(ev.parent_id, -1) + 1 if ev.parent_id else 0
        if ev.span_id:
            depth_of[ev.span_id] = depth
        steps.append(Step(
            seq=ev.seq, kind=ev.kind, agent=ev.agent or "", depth=depth, title=_title(ev), text=_text(ev.attrs),
            elapsed=ev.elapsed, dt=max(0.0, ev.elapsed - prev),
            tokens_in=_int(ev.attrs.get(_INPUT_TOKENS)), tokens_out=_int(ev.attrs.get(_OUTPUT_TOKENS)),
            span_id=ev.span_id, parent_id=ev.parent_id,
        ))
        prev = ev.elapsed
    return steps


def search(steps: list[Step], query: str) -> list[Step]:
    """Steps whose kind, agent, title or text contains ``query`` (case-insensitive); all when empty."""
    q = query.strip().lower()
    if not q:
        return steps
    return [s for s in steps if q in s.text.lower() or q in s.title.lower() or q in s.agent.lower()
            or q in s.kind]


def totals(steps: list[Step]) -> dict[str, float]:
    """Tokens in/out, working time and step count of a run."""
    return {
        "steps": len(steps),
        "tokens_in": sum(s.tokens_in for s in steps),
        "tokens_out": sum(s.tokens_out for s in steps),
        "elapsed": steps[-1].elapsed if steps else 0.0,
    }


def align(a: list[Step], b: list[Step]) -> list[tuple[Step | None, Step | None]]:
    """Pair the steps of two runs so that matching steps sit side by side (a diff of their signatures).

    Args:
        a: Steps of the left run.
        b: Steps of the right run.

    Returns:
        Rows ``(left, right)``; ``None`` where one run has a step the other lacks. Matching steps whose
        text differs are still paired (the renderer marks them changed).
    """
    rows: list[tuple[Step | None, Step | None]] = []
    sm = difflib.SequenceMatcher(None, [s.signature for s in a], [s.signature for s in b], autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            rows += zip(a[i1:i2], b[j1:j2])
        elif op == "replace":
            n = max(i2 - i1, j2 - j1)
            left, right = a[i1:i2], b[j1:j2]
            rows += [(left[k] if k < len(left) else None, right[k] if k < len(right) else None) for k in range(n)]
        elif op == "delete":
            rows += [(s, None) for s in a[i1:i2]]
        else:
            rows += [(None, s) for s in b[j1:j2]]
    return rows
