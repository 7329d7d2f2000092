"""Reference metrics for generated text: ROUGE (``rouge-score``), BLEU and chrF (``sacrebleu``), and
cosine similarity of sentence embeddings (the shipped all-MiniLM-L6-v2 through :mod:`lab.models`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lab.scoring.base import ScoringError, register_scorer
from lab.traces.schema import Provenance, Score

_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def _references(target: Any) -> list[str]:
    if target is None:
        raise ScoringError("reference metrics need the reference text(s) as target")
    refs = [str(t) for t in target] if isinstance(target, (list, tuple)) else [str(target)]
    if not refs:
        raise ScoringError("reference metrics need at least one reference text")
    return refs


def _score(name: str, value: float, context: dict[str, Any], **details: Any) -> Score:
    return Score(name, value, Provenance.RULE.value, source=name, item_id=context.get("item_id"), details=details)


@register_scorer("rouge")
@dataclass
class Rouge:
    """ROUGE F-measure of the output against the reference (the best over several references).

    Args:
        variant: ``rouge1``, ``rouge2``, ``rougeL`` or ``rougeLsum``.
        stemmer: Porter-stem tokens first (as most papers do).
    """

    variant: str = "rougeL"
    stemmer: bool = True
    name: str = "rouge"

    def __post_init__(self) -> None:
        if self.variant not in _ROUGE_TYPES:
            raise ScoringError(f"rouge: variant must be one of {_ROUGE_TYPES}, not {self.variant!r}")
        from rouge_score import rouge_scorer

        self._scorer = rouge_scorer.RougeScorer([self.variant], use_stemmer=self.stemmer)

    def __call__(self, output: Any, target: Any = None, **context: Any) -> Score:
        """Score the best ROUGE F-measure of the output against the references ``target``."""
        pred = "" if output is None else str(output)
        best = max(self._scorer.score(ref, pred)[self.variant] for ref in _references(target))
        return _score(self.name, best.fmeasure, context, variant=self.variant, precision=best.precision,
                      recall=best.recall)


@register_scorer("bleu")
@dataclass
class Bleu:
    """Sentence BLEU (``sacrebleu``), scaled to 0–1, against one or more references.

    Args:
        metric: ``bleu`` or ``chrf``.
    """

    metric: str = "bleu"
    name: str = "bleu"

    def __post_init__(self) -> None:
        if self.metric not in ("bleu", "chrf"):
            raise ScoringError(f"bleu: metric must be 'bleu' or 'chrf', not {self.metric!r}")

    def __call__(self, output: Any, target: Any = None, **context: Any) -> Score:
        """Score the output's sentence BLEU (or chrF) against the references ``target``, scaled to 0-1."""
        import sacrebleu

        pred = "" if output is None else str(output)
        fn = sacrebleu.sentence_bleu if self.metric == "bleu" else sacrebleu.sentence_chrf
        res = fn(pred, _references(target))
        return _score(self.name, res.score / 100.0, context, metric=self.metric, signature=str(res))


@register_scorer("embedding_similarity")
@dataclass
class EmbeddingSimilarity:
    """Cosine similarity between the output's and the reference's sentence embeddings (the best over
    several references).

    Args:
        model: An embedder name for :func:`lab.models.load_embedder` (default the shipped ``minilm``).
    """

    model: str = "minilm"
    name: str = "embedding_similarity"

    def __call__(self, output: Any, target: Any = None, **context: Any) -> Score:
        """Score the output's best cosine similarity to the references ``target``."""
        from lab.models import load_embedder

        refs = _references(target)
        emb = load_embedder(self.model).embed(["" if output is None else str(output), *refs])
        sims = emb[1:] @ emb[0]
        return _score(self.name, float(sims.max()), context, model=self.model)
