"""LLM judges: a chat model grades an output against a rubric, with structured output so the verdict
always parses.

A rubric is one of three shapes: a single score on a scale (``scale=(1, 5)``), pass/fail
(``scale=None``), or several named dimensions each on the scale (``dimensions={"accuracy": "...",
...}``, as FLASK and Style-over-Substance do). The judge may see a reference answer (the target) and may
grade as a specific expert (``persona``, for personalised judging). It states its confidence, which is
recorded with each score.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lab.models.base import ChatModel, Message, Sampling
from lab.models.errors import ModelError
from lab.scoring.base import ScoringError, register_scorer
from lab.traces.schema import Provenance, Score

_SYSTEM = ("You are a strict, fair grader of answers to expert tasks. Grade only what the rubric asks, "
           "and reply with JSON only.")


@register_scorer("llm_judge")
@dataclass
class LLMJudge:
    """Grade outputs with a chat model against a rubric.

    Args:
        model: A :class:`~lab.models.ChatModel`, or a name for :func:`lab.models.load_model`.
        criteria: What a good answer is (the rubric's text).
        scale: ``(low, high)`` integer scale; ``None`` for a pass/fail verdict.
        dimensions: Named dimensions, each graded on ``scale`` (name → what it means).
        persona: The expert the judge grades as (e.g. "a cardiologist who values brevity").
        use_reference: Show the target to the judge as the reference answer (when given).
        explanation_chars: Longest explanation asked for (bounds the reply's length).
        sampling: Sampling for the judge's calls (default: greedy, 384 tokens).
        name: Scorer name recorded with the scores.

    Call context: ``question`` (the task's question), ``item_id``, ``recorder`` (a
    :class:`~lab.traces.RunRecorder`: the judge's model calls are recorded on that run).
    """

    model: ChatModel | str
    criteria: str = "The answer is correct, complete and clearly stated."
    scale: tuple[int, int] | list[int] | None = (1, 5)
    dimensions: Mapping[str, str] | None = None
    persona: str | None = None
    use_reference: bool = True
    explanation_chars: int = 300
    sampling: Sampling | None = None
    name: str = "llm_judge"
    _schema: dict[str, Any] = field(init=False, repr=False)
    _chat: ChatModel = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.model, str):
            from lab.models import load_model

            self.model = load_model(self.model)
        self._chat = self.model
        if self.scale is not None:
            lo, hi = (int(x) for x in self.scale)
            if lo >= hi:
                raise ScoringError(f"llm_judge: scale must be (low, high) with low < high, not {self.scale}")
            self.scale = (lo, hi)
        if self.dimensions is not None and (not self.dimensions or self.scale is None):
            raise ScoringError("llm_judge: dimensions need a numeric scale and at least one dimension")
        self._schema = self.response_schema()

    @property
    def mode(self) -> str:
        """``score``, ``pass_fail`` or ``dimensions``."""
        return "dimensions" if self.dimensions else "pass_fail" if self.scale is None else "score"

    def response_schema(self) -> dict[str, Any]:
        """The JSON Schema the judge's reply must follow."""
        props: dict[str, Any] = {"explanation": {"type": "string", "maxLength": self.explanation_chars}}
        if self.mode == "pass_fail":
            props["verdict"] = {"type": "string", "enum": ["pass", "fail"]}
        else:
            lo, hi = self._bounds()
            grade = {"type": "integer", "minimum": lo, "maximum": hi}
            if self.mode == "score":
                props["score"] = grade
            else:
                props["scores"] = {"type": "object", "properties": {d: grade for d in self.dimensions or {}},
                                   "required": list(self.dimensions or {}), "additionalProperties": False}
        props["confidence"] = {"type": "integer", "minimum": 0, "maximum": 100}
        return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}

    def _bounds(self) -> tuple[int, int]:
        """The ``(low, high)`` scale of the ``score`` and ``dimensions`` modes."""
        if self.scale is None:
            raise ScoringError("llm_judge: this mode needs a numeric scale")
        lo, hi = self.scale
        return lo, hi

    def messages(self, output: Any, target: Any = None, question: str | None = None) -> list[Message]:
        """The conversation the judge is sent."""
        system = _SYSTEM if not self.persona else f"You are {self.persona}. {_SYSTEM}"
        parts = []
        if question:
            parts.append(f"## Task\n{question}")
        if self.use_reference and target is not None:
            parts.append(f"## Reference answer\n{_text(target)}")
        parts.append(f"## Answer to grade\n{_text(output)}")
        rubric = f"## Rubric\n{self.criteria}"
        if self.mode == "pass_fail":
            rubric += "\nGive the verdict \"pass\" if the answer meets the rubric, else \"fail\"."
        elif self.mode == "score":
            lo, hi = self._bounds()
            rubric += f"\nGive a score from {lo} (worst) to {hi} (best)."
        else:
            dims = "\n".join(f"- {d}: {desc}" for d, desc in (self.dimensions or {}).items())
            lo, hi = self._bounds()
            rubric += f"\nScore each dimension from {lo} (worst) to {hi} (best):\n{dims}"
        rubric += ("\nFirst explain briefly, then grade. State your confidence in your grade as a whole "
                   "number from 0 to 100.")
        parts.append(rubric)
        return [Message("system", system), Message("user", "\n\n".join(parts))]

    def prompt_id(self) -> str:
        """A short hash of everything that shapes the prompt (rubric, persona, schema)."""
        key = json.dumps([self.criteria, self.scale, dict(self.dimensions or {}), self.persona,
                          self.use_reference, self._schema], sort_keys=True, default=str)
        return hashlib.sha1(key.encode()).hexdigest()[:12]

    def __call__(self, output: Any, target: Any = None, **context: Any) -> list[Score]:
        """Grade ``output`` (against the reference ``target`` when shown): one score per dimension, each with
        the judge's explanation and confidence; ``value`` is ``None`` when no valid reply came back."""
        import jsonschema  # slow to import; only judges need it

        msgs = self.messages(output, target, context.get("question"))
        sampling = self.sampling or Sampling(temperature=0.0, max_tokens=384)
        base = {"prompt_id": self.prompt_id(), "persona": self.persona, "mode": self.mode,
                "temperature": sampling.temperature, "seed": sampling.seed}
        reply, error = None, None
        for _ in range(2):  # one retry for a retryable malformed reply
            try:
                resp = self._chat.chat(msgs, response_schema=self._schema, sampling=sampling,
                                       recorder=context.get("recorder"), agent=f"judge:{self.name}")
                reply = resp.parsed if resp.parsed is not None else json.loads(resp.message.content)
                jsonschema.validate(reply, self._schema)
                break
            except ModelError as e:
                reply, error = None, f"{type(e).__name__}: {e}"
                if not e.retryable:
                    break
            except (ValueError, jsonschema.ValidationError) as e:
                reply, error = None, f"reply does not follow the schema: {str(e).splitlines()[0][:200]}"
        return self._scores(reply, error, base, context.get("item_id"))

    def _scores(self, reply: dict[str, Any] | None, error: str | None, base: dict[str, Any],
                item_id: str | None) -> list[Score]:
        source = getattr(self.model, "name", str(self.model))
        dims = list(self.dimensions or {}) or ["overall"]
        if reply is None:
            return [Score(self.name, None, Provenance.MODEL.value, source=source, item_id=item_id, dimension=d,
                          details={**base, "error": error}) for d in dims]
        details = {**base, "explanation": reply["explanation"], "confidence": reply["confidence"] / 100.0}
        if self.mode == "pass_fail":
            verdict = reply["verdict"]
            return [Score(self.name, float(verdict == "pass"), Provenance.MODEL.value, source=source,
                          item_id=item_id, label=verdict, details=details)]
        if self.mode == "score":
            return [Score(self.name, float(reply["score"]), Provenance.MODEL.value, source=source, item_id=item_id,
                          details=details)]
        return [Score(self.name, float(reply["scores"][d]), Provenance.MODEL.value, source=source, item_id=item_id,
                      dimension=d, details=details) for d in dims]


def _text(x: Any) -> str:
    return x if isinstance(x, str) else json.dumps(x, ensure_ascii=False, default=str)
