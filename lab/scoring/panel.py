"""Panels of judges (PRE / panel-of-experts style): several judges grade the same output; an optional
qualification set keeps only judges that agree with known grades; their scores are combined by mean,
majority or weights."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lab.scoring.base import Scorer, ScoringError, as_scores, register_scorer
from lab.traces.schema import Provenance, Score

AGGREGATES = ("mean", "majority", "weights")


@dataclass(frozen=True, slots=True)
class QualificationItem:
    """A graded example a judge must reproduce to sit on the panel.

    Attributes:
        output: The answer to grade.
        expected: The known grade (a number, or a label such as ``pass``).
        target: The reference answer shown to the judge.
        context: Extra scorer context (``question`` ...).
    """

    output: Any
    expected: float | str
    target: Any = None
    context: Mapping[str, Any] = field(default_factory=dict)


@register_scorer("panel")
@dataclass
class JudgePanel:
    """Several judges; every member's score is kept, plus one aggregate score per dimension.

    Args:
        judges: The member scorers (LLM judges, or any scorer). Each needs a distinct ``name`` or model.
        aggregate: ``mean``, ``majority`` (most common value or label; ties go to the lower value) or
            ``weights`` (weighted mean with ``weights``).
        weights: One weight per judge (same order), for ``aggregate="weights"``.
        qualification: Graded examples; a judge sits on the panel only if it reproduces at least
            ``min_agreement`` of them (numbers within ``tolerance``, labels exactly).
        min_agreement: Share of qualification items a judge must get right.
        tolerance: Allowed distance from a numeric expected grade.
        name: Scorer name of the aggregate score.
    """

    judges: Sequence[Scorer]
    aggregate: str = "mean"
    weights: Sequence[float] | None = None
    qualification: Sequence[QualificationItem] | None = None
    min_agreement: float = 0.5
    tolerance: float = 0.0
    name: str = "panel"
    qualified: list[int] | None = field(default=None, init=False)
    qualification_results: dict[str, float] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        if not self.judges:
            raise ScoringError("panel: needs at least one judge")
        if self.aggregate not in AGGREGATES:
            raise ScoringError(f"panel: aggregate must be one of {AGGREGATES}, not {self.aggregate!r}")
        if self.aggregate == "weights":
            if self.weights is None or len(self.weights) != len(self.judges) or min(self.weights) < 0 \
                    or sum(self.weights) <= 0:
                raise ScoringError("panel: aggregate='weights' needs one non-negative weight per judge, "
                                   f"not all zero (got {self.weights} for {len(self.judges)} judges)")
        if self.qualification is None:
            self.qualified = list(range(len(self.judges)))

    def member_id(self, i: int) -> str:
        """How member ``i`` is named in scores and qualification results."""
        j = self.judges[i]
        model = getattr(j, "model", None)
        return f"{j.name}:{getattr(model, 'name', model)}" if model is not None else j.name

    def qualify(self) -> list[int]:
        """Grade the qualification set with every judge; keep those that agree enough.

        Returns:
            Indices of the qualified judges.

        Raises:
            ScoringError: No judge qualified.
        """
        keep = []
        for i, judge in enumerate(self.judges):
            hits = []
            for item in self.qualification or []:
                s = as_scores(judge(item.output, item.target, **dict(item.context)))[0]
                if isinstance(item.expected, str):
                    hits.append(s.label == item.expected)
                else:
                    hits.append(s.value is not None and abs(s.value - float(item.expected)) <= self.tolerance)
            rate = float(np.mean(hits)) if hits else 1.0
            self.qualification_results[self.member_id(i)] = rate
            if rate >= self.min_agreement:
                keep.append(i)
        if not keep:
            raise ScoringError(f"panel: no judge reproduced {self.min_agreement:.0%} of the qualification set "
                               f"({self.qualification_results})")
        self.qualified = keep
        return keep

    def __call__(self, output: Any, target: Any = None, **context: Any) -> list[Score]:
        """Each qualified judge's scores, and per dimension the panel's combined score (votes in ``details``)
        first."""
        members = self.qualified if self.qualified is not None else self.qualify()
        member_scores: list[tuple[int, Score]] = []
        for i in members:
            member_scores += [(i, s) for s in as_scores(self.judges[i](output, target, **context))]
        out: list[Score] = []
        dims = list(dict.fromkeys(s.dimension for _, s in member_scores))
        for dim in dims:
            got = [(i, s) for i, s in member_scores if s.dimension == dim and (s.value is not None or s.label)]
            value, label = self._combine(got)
            votes = {self.member_id(i): s.value if s.value is not None else s.label for i, s in got}
            out.append(Score(self.name, value, Provenance.MODEL.value,
                             source="panel(" + ",".join(self.member_id(i) for i in members) + ")",
                             item_id=context.get("item_id"), dimension=dim, label=label,
                             details={"aggregate": self.aggregate, "votes": votes,
                                      "abstained": len(members) - len(got)}))
        return out + [s for _, s in member_scores]

    def _combine(self, got: list[tuple[int, Score]]) -> tuple[float | None, str | None]:
        if not got:
            return None, None
        values = [s.value for _, s in got]
        if self.aggregate == "majority":
            if all(v is None for v in values):
                counts = Counter(s.label for _, s in got)
                return None, sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[0][0]
            value_counts = Counter(v for v in values if v is not None)
            best = sorted(value_counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
            labels = {s.label for _, s in got if s.value == best}
            return float(best), labels.pop() if len(labels) == 1 else None
        pairs = [(i, v) for (i, _), v in zip(got, values, strict=True) if v is not None]
        if not pairs:
            return None, None
        weights = None if self.aggregate == "mean" else self.weights  # set for "weights" (checked at construction)
        w = [1.0 if weights is None else float(weights[i]) for i, _ in pairs]
        if sum(w) == 0:
            return None, None
        return float(np.average([v for _, v in pairs], weights=w)), None
