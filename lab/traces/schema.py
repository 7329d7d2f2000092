"""The one event schema every part of the lab records into.

Attribute keys follow the OpenTelemetry GenAI semantic conventions where one exists
(``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` ...) so a trace exports over OTLP unchanged.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class EventKind(str, enum.Enum):
    """What an event records."""

    RUN_STARTED = "run_started"
    RUN_FINISHED = "run_finished"
    AGENT_MESSAGE = "agent_message"
    MODEL_CALL = "model_call"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    SANDBOX_EXEC = "sandbox_exec"
    SANDBOX_FILE = "sandbox_file"
    HUMAN_ACTION = "human_action"
    SCORE = "score"
    LIMIT = "limit"
    ERROR = "error"
    SPAN = "span"
    PROVENANCE = "provenance"


class RunStatus(str, enum.Enum):
    """Lifecycle of a run. ``running`` is the only non-final state."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


class Provenance(str, enum.Enum):
    """Who gave a score."""

    RULE = "rule"
    MODEL = "model"
    HUMAN = "human"


# Attribute names (OpenTelemetry GenAI conventions where they exist).
MODEL = "gen_ai.request.model"
RESPONSE_MODEL = "gen_ai.response.model"
SYSTEM = "gen_ai.system"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
FINISH_REASONS = "gen_ai.response.finish_reasons"
TEMPERATURE = "gen_ai.request.temperature"
TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
AGENT_NAME = "gen_ai.agent.name"
EVAL_NAME = "gen_ai.evaluation.name"
EVAL_SCORE = "gen_ai.evaluation.score.value"
EVAL_LABEL = "gen_ai.evaluation.score.label"
EVAL_EXPLANATION = "gen_ai.evaluation.explanation"
DURATION = "lab.duration_s"  # seconds an event's work took (a step, an exec); OTLP span length
LATENCY = "lab.latency_s"  # seconds a model call took (also read as an OTLP span length)


@dataclass(slots=True)
class Event:
    """One append-only record of something a run did.

    Attributes:
        run_id: The run this event belongs to.
        kind: What happened (an :class:`EventKind` value).
        attrs: Free-form attributes; OpenTelemetry GenAI names where they apply.
        seq: Position in the run, assigned by the store (0-based, gap-free).
        ts: Wall-clock time (Unix seconds).
        elapsed: Pause-free working time since the run started (seconds).
        span_id: Identifier of the span this event opens or belongs to.
        parent_id: The parent span, so multi-agent dialogs render as a tree.
        agent: Agent or role name (``decider``, ``researcher``, ``human:alice`` ...).
    """

    run_id: str
    kind: str
    attrs: dict[str, Any] = field(default_factory=dict)
    seq: int = -1
    ts: float = 0.0
    elapsed: float = 0.0
    span_id: str | None = None
    parent_id: str | None = None
    agent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The event as a plain JSON-able dict."""
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "ts": self.ts,
            "elapsed": self.elapsed,
            "kind": self.kind,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "agent": self.agent,
            "attrs": self.attrs,
        }


@dataclass(slots=True)
class Score:
    """A score with its provenance: who or what gave it.

    Attributes:
        scorer: Name of the scorer (``output_match``, ``judge:smollm2``, ``expert``).
        value: The numeric value (``None`` when the scorer could not score).
        provenance: ``rule``, ``model`` or ``human``.
        source: Who exactly: a model name, a grader id, a rule name.
        item_id: The item graded (defaults to the run's task).
        dimension: Rubric dimension (``overall`` when there is one).
        label: Optional categorical verdict (``A``, ``B``, ``tie``, ``pass``).
        final: Whether this is the run's final score (vs an intermediate one).
        details: Anything else worth keeping (prompt, confidence, explanation).
    """

    scorer: str
    value: float | None
    provenance: str = Provenance.RULE.value
    source: str | None = None
    item_id: str | None = None
    dimension: str = "overall"
    label: str | None = None
    final: bool = True
    details: dict[str, Any] = field(default_factory=dict)


FINAL_STATUSES = frozenset(s.value for s in RunStatus if s is not RunStatus.RUNNING)
