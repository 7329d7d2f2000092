"""Scorers: rules, reference metrics, LLM judges and panels, human grades, re-scoring stored runs.

Every scorer is called ``scorer(output, target=None, **context)`` and returns a
:class:`lab.traces.Score` (or a list, one per rubric dimension) carrying its provenance. Task files
name scorers by string: ``get_scorer("json_match", float_tol=1e-2)``.
"""

from lab.scoring.base import SCORERS, Scorer, ScoringError, as_scores, get_scorer, register_scorer, scorer_names
from lab.scoring.human import import_grades, read_grades
from lab.scoring.judge import LLMJudge
from lab.scoring.panel import JudgePanel, QualificationItem
from lab.scoring.reference import Bleu, EmbeddingSimilarity, Rouge
from lab.scoring.rescore import rescore, run_output
from lab.scoring.rules import (
    ExactMatch,
    JsonMatch,
    Landmarks,
    NormalizedMatch,
    NormalizedScore,
    NumericMatch,
    RegexMatch,
    json_match,
    normalize_text,
    normalized_score,
    parse_number,
    super_json_match,
)
from lab.scoring.script import ScriptScorer

__all__ = [
    "SCORERS", "Bleu", "EmbeddingSimilarity", "ExactMatch", "JsonMatch", "JudgePanel", "LLMJudge", "Landmarks",
    "NormalizedMatch", "NormalizedScore", "NumericMatch", "QualificationItem", "RegexMatch", "Rouge", "Scorer",
    "ScoringError", "ScriptScorer", "as_scores", "get_scorer",
    "import_grades", "json_match", "normalize_text", "normalized_score", "parse_number", "read_grades",
    "register_scorer", "rescore", "run_output", "scorer_names", "super_json_match",
]
