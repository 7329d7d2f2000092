"""Rule scorers: exact and normalised match, regex, numeric tolerance, JSON output match (SUPER),
landmark fraction, and scores normalised against a starting and a reference solution.

Every rule score has ``provenance="rule"`` and ``source`` set to the scorer's name.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lab.scoring.base import ScoringError, register_scorer
from lab.traces.schema import Provenance, Score

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def _rule(name: str, value: float | None, context: dict[str, Any], **details: Any) -> Score:
    label = None if value is None else ("pass" if value == 1.0 else "fail" if value == 0.0 else None)
    return Score(name, value, Provenance.RULE.value, source=name, item_id=context.get("item_id"),
                 label=label, details={k: v for k, v in details.items() if v is not None})


def _targets(target: Any) -> list[str]:
    if target is None:
        raise ScoringError("this scorer needs a target (the expected answer)")
    if isinstance(target, (list, tuple)):
        return [str(t) for t in target]
    return [str(target)]


def normalize_text(text: str) -> str:
    """SQuAD-style normalisation: lower case, no punctuation, no articles, single spaces."""
    text = _ARTICLES.sub(" ", str(text).lower().translate(_PUNCT))
    return " ".join(text.split())


@register_scorer("exact_match")
@dataclass
class ExactMatch:
    """1.0 when the output equals the target (or any of a list of targets), surrounding white space
    ignored; else 0.0."""

    name: str = "exact_match"

    def __call__(self, output: Any, target: Any = None, **context: Any) -> Score:
        """Score 1.0 when the stripped output equals a target, else 0.0 (see :class:`~lab.scoring.base.Scorer`)."""
        out = "" if output is None else str(output).strip()
        hit = any(out == t.strip() for t in _targets(target))
        return _rule(self.name, float(hit), context)


@register_scorer("normalized_match")
@dataclass
class NormalizedMatch:
    """Like :class:`ExactMatch` after :func:`normalize_text` on both sides (case, punctuation,
    articles and white space ignored)."""

    name: str = "normalized_match"

    def __call__(self, output: Any, target: Any = None, **context: Any) -> Score:
        """Score 1.0 when the normalized output equals a normalized target, else 0.0."""
        out = normalize_text("" if output is None else str(output))
        hit = any(out == normalize_text(t) for t in _targets(target))
        return _rule(self.name, float(hit), context)


@register_scorer("regex")
@dataclass
class RegexMatch:
    """1.0 when ``pattern`` (or the target, when no pattern is given) is found in the output.

    Args:
        pattern: Regular expression; defaults to the target passed at call time.
        fullmatch: Require the whole (stripped) output to match instead of searching in it.
        ignore_case: Case-insensitive matching.
    """

    pattern: str | None = None
    fullmatch: bool = False
    ignore_case: bool = False
    name: str = "regex"

    def __post_init__(self) -> None:
        if self.pattern is not None:
            self._compiled = self._compile(self.pattern)

    def _compile(self, pattern: str) -> re.Pattern[str]:
        try:
            return re.compile(pattern, re.IGNORECASE if self.ignore_case else 0)
        except re.error as e:
            raise ScoringError(f"regex scorer: bad pattern {pattern!r}: {e}") from e

    def __call__(self, output: Any, target: Any = None, **context: Any) -> Score:
        """Score 1.0 when the pattern (or the target as one) matches the output, else 0.0."""
        rx = self._compiled if self.pattern is not None else self._compile(_targets(target)[0])
        text = "" if output is None else str(output)
        hit = rx.fullmatch(text.strip()) if self.fullmatch else rx.search(text)
        return _rule(self.name, float(hit is not None), context, pattern=rx.pattern)


def parse_number(value: Any) -> float | None:
    """A number from ``value``: itself, the whole string as a float, or else the last number in the
    text (``"the answer is 42."`` → 42.0). ``None`` when there is none."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip().replace(",", "")
    try:
        return float(text)
    except ValueError:
        found = _NUMBER.findall(text)
        return float(found[-1]) if found else None


@register_scorer("numeric")
@dataclass
class NumericMatch:
    """1.0 when the output's number is within tolerance of the target's, as :func:`math.isclose`:
    ``|x - y| <= max(rel_tol * max(|x|, |y|), abs_tol)``.

    Args:
        abs_tol: Absolute tolerance.
        rel_tol: Relative tolerance.
    """

    abs_tol: float = 0.0
    rel_tol: float = 1e-9
    name: str = "numeric"

    def __post_init__(self) -> None:
        if self.abs_tol < 0 or self.rel_tol < 0:
            raise ScoringError(f"numeric scorer: tolerances must be >= 0 (abs_tol={self.abs_tol}, "
                               f"rel_tol={self.rel_tol})")

    def __call__(self, output: Any, target: Any = None, **context: Any) -> Score:
        """Score 1.0 when the output's number is within tolerance of the target's, else 0.0.

        Raises:
            ScoringError: The target is not a number.
        """
        want = parse_number(target)
        if want is None:
            raise ScoringError(f"numeric scorer: target {target!r} is not a number")
        got = parse_number(output)
        if got is None:
            return _rule(self.name, 0.0, context, parsed=None, reason="no number in the output")
        hit = math.isclose(got, want, rel_tol=self.rel_tol, abs_tol=self.abs_tol)
        return _rule(self.name, float(hit), context, parsed=got)


# -- JSON output match (SUPER) -----------------------------------------------------------------------


def json_match(prediction: Any, gold: Any, *, float_tol: float = 1e-2) -> float:
    """Fraction of ``gold`` that ``prediction`` reproduces, as SUPER defines output match.

    Numbers (ints and floats alike) match when ``|p - g| < float_tol``; strings when equal after
    stripping; booleans and ``None`` when equal. A dict scores the mean over **gold's** keys (a key
    missing from the prediction scores 0; extra predicted keys are ignored); a list the mean over gold's
    positions (missing positions score 0). Values of different types score 0.

    Raises:
        ScoringError: ``gold`` is an empty dict or list, or holds a type JSON does not have.
    """
    if isinstance(gold, bool) or gold is None:
        return float(type(prediction) is type(gold) and prediction == gold)
    if isinstance(gold, (int, float)):
        if isinstance(prediction, bool) or not isinstance(prediction, (int, float)):
            return 0.0
        return float(abs(float(prediction) - float(gold)) < float_tol)
    if isinstance(gold, str):
        return float(isinstance(prediction, str) and prediction.strip() == gold.strip())
    if isinstance(gold, dict):
        if not gold:
            raise ScoringError("json_match: the gold answer is an empty object")
        if not isinstance(prediction, dict):
            return 0.0
        return sum(json_match(prediction[k], v, float_tol=float_tol) if k in prediction else 0.0
                   for k, v in gold.items()) / len(gold)
    if isinstance(gold, (list, tuple)):
        if not gold:
            raise ScoringError("json_match: the gold answer is an empty list")
        if not isinstance(prediction, (list, tuple)):
            return 0.0
        return sum(json_match(p, g, float_tol=float_tol) for p, g in zip(prediction, gold, strict=False)) / len(gold)
    raise ScoringError(f"json_match: cannot compare a gold value of type {type(gold).__name__}")


def super_json_match(prediction: Any, gold: Any, *, float_tol: float = 1e-2) -> float:
    """SUPER's published output match, reproduced exactly, quirk included.

    SUPER's ``get_metrics`` calls ``evaluate(gold, submission)`` on a function declared
    ``evaluate(predicted, gold)``, and its dict branch swaps the two again one level down. So at the top
    level (and every second level of nesting) the *prediction's* keys are iterated: a prediction that
    leaves out gold keys is not penalised, one with extra keys is. Use this only to compare with SUPER's
    numbers; :func:`json_match` is the lab's definition.
    """
    return _super_evaluate(gold, prediction, float_tol)


def _super_evaluate(predicted: Any, gold: Any, eps: float) -> float:
    # Same semantics as SUPER's evaluate(predicted, gold): type check after int->float, then by gold's type.
    if type(gold) is int:
        gold = float(gold)
    if type(predicted) is int:
        predicted = float(predicted)
    if type(gold) is not type(predicted):
        return 0.0
    if isinstance(gold, list):
        if not gold:
            raise ScoringError("super_json_match: empty list")
        return sum(_super_evaluate(p, g, 1e-2) for p, g in zip(predicted, gold, strict=False)) / len(gold)
    if isinstance(gold, dict):
        if not gold:
            raise ScoringError("super_json_match: empty object")
        return sum(_super_evaluate(v, predicted.get(k), eps) for k, v in gold.items()) / len(gold)
    if isinstance(gold, str):
        return float(predicted.strip() == gold.strip())
    if isinstance(gold, float):
        return float(abs(predicted - gold) < eps)
    raise ScoringError(f"super_json_match: cannot compare values of type {type(gold).__name__}")


def _as_json(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            return json.loads(value), None
        except json.JSONDecodeError as e:
            return None, f"output is not JSON: {e.msg} at position {e.pos}"
    return value, None


@register_scorer("json_match")
@dataclass
class JsonMatch:
    """SUPER output match: the fraction of the gold JSON answer the output reproduces
    (see :func:`json_match`); strings are parsed as JSON.

    Args:
        float_tol: Absolute tolerance for numbers (SUPER: 1e-2).
        super_compat: Use SUPER's published scoring with its argument swap (:func:`super_json_match`)
            instead of the lab's gold-keyed definition.
    """

    float_tol: float = 1e-2
    super_compat: bool = False
    name: str = "output_match"

    def __call__(self, output: Any, target: Any = None, **context: Any) -> Score:
        """Score the output's JSON against the gold JSON ``target`` (:func:`json_match`, or SUPER's variant).

        Raises:
            ScoringError: No target, a target that is not JSON, or an empty or uncomparable gold value.
        """
        if target is None:
            raise ScoringError("json_match needs the gold answer as target")
        gold, err = _as_json(target)
        if err:
            raise ScoringError(f"json_match: the gold answer is not JSON ({err})")
        pred, err = _as_json(output)
        if err:
            return _rule(self.name, 0.0, context, reason=err)
        fn = super_json_match if self.super_compat else json_match
        return _rule(self.name, fn(pred, gold, float_tol=self.float_tol), context)


@register_scorer("landmarks")
@dataclass
class Landmarks:
    """Fraction of landmark regexes found in the run's transcript (SUPER's ``landmarks`` metric).

    The output is the transcript: one string, or a list of step observations; each step's new lines
    are replaced by spaces before searching, as SUPER does. The target (or ``patterns``) is the list of
    regular expressions.
    """

    patterns: Sequence[str] | None = None
    name: str = "landmarks"

    def __call__(self, output: Any, target: Any = None, **context: Any) -> Score:
        """Score the fraction of the patterns found in the transcript ``output`` (misses in ``details``).

        Raises:
            ScoringError: No patterns, or one that is not a valid regex.
        """
        patterns = list(self.patterns if self.patterns is not None else (target or []))
        if not patterns:
            raise ScoringError("landmarks scorer needs a non-empty list of patterns")
        steps = [output] if isinstance(output, str) else list(output or [])
        texts = [str(s).replace("\n", " ") for s in steps]
        try:
            hits = [any(re.search(p, t) for t in texts) for p in patterns]
        except re.error as e:
            raise ScoringError(f"landmarks scorer: bad pattern: {e}") from e
        return _rule(self.name, sum(hits) / len(hits), context,
                     missed=[p for p, h in zip(patterns, hits, strict=True) if not h] or None)


@register_scorer("entrypoint")
@dataclass
class Entrypoint:
    """Whether the run executed the task's entrypoint script properly (SUPER's ``entrypoint`` metric).

    The output is the run's executions: dicts with ``command``, ``exit_code``, ``duration`` (seconds) and
    ``output`` (the full recorded stdout and stderr). An execution counts when its command names the
    entrypoint file, its output holds no Python traceback, no command line naming the entrypoint failed
    (the shell tool runs under ``pipefail`` and reports each failing line, so ``python train.py | tail``
    hiding a crash's traceback still fails), and it either exited 0 or ran at least ``min_seconds`` (a long
    training run stopped by a timeout still counts, as in SUPER). The target is the entrypoint path.
    """

    min_seconds: float = 10.0
    name: str = "entrypoint"

    def __call__(self, output: Any, target: Any = None, **context: Any) -> Score:
        """Score 1.0 when an execution in ``output`` ran the entrypoint ``target`` properly, else 0.0.

        Raises:
            ScoringError: No entrypoint given.
        """
        if not target:
            raise ScoringError("entrypoint scorer needs the entrypoint (target)")
        script = re.escape(str(target).rsplit("/", 1)[-1])
        named = re.compile(rf"(^|[\s/'\"]){script}($|[\s'\";|&)])")
        for ex in output or []:
            command, out = str(ex.get("command", "")), str(ex.get("output", ""))
            if not named.search(command):
                continue
            clean = "Traceback (most recent call last)" not in out and not _entrypoint_failed(command, out, named)
            if clean and (ex.get("exit_code") == 0 or float(ex.get("duration") or 0.0) >= self.min_seconds):
                return _rule(self.name, 1.0, context, command=command[-300:])
        return _rule(self.name, 0.0, context)


def _entrypoint_failed(command: str, output: str, named: re.Pattern[str]) -> bool:
    """Whether the shell tool reported a failing command line (``__LAB_FAILED__ STATUS LINE``) naming
    the entrypoint; line N is the command's N-th line (line 0 is the tool's own prelude)."""
    from lab.tools.shell import FAILED_MARK

    lines = command.split("\n")
    for m in re.finditer(rf"^{FAILED_MARK} (\d+) (\d+)$", output, re.M):
        n = int(m.group(2))
        if 0 < n < len(lines) and named.search(lines[n]):
            return True
    return False


def normalized_score(score: float, start: float, reference: float, *, log: bool = False) -> float:
    """``(s - s_start) / (s_ref - s_start)``: 0 at the starting solution, 1 at the reference.

    The same formula serves lower-is-better metrics (then ``reference < start`` and the signs cancel).
    With ``log=True`` the three values are log-transformed first (RE-Bench does this for run times
    and losses).

    Raises:
        ScoringError: ``start == reference``, or ``log`` with a non-positive value.
    """
    if log:
        if min(score, start, reference) <= 0:
            raise ScoringError(f"normalized_score: log needs positive values (score={score}, start={start}, "
                               f"reference={reference})")
        score, start, reference = math.log(score), math.log(start), math.log(reference)
    if reference == start:
        raise ScoringError(f"normalized_score: start and reference are equal ({start}); nothing to normalise by")
    return (score - start) / (reference - start)


@register_scorer("normalized_score")
@dataclass
class NormalizedScore:
    """The output's raw score normalised between a starting and a reference solution
    (:func:`normalized_score`). ``start``/``reference`` may come from the target as a dict instead.

    Args:
        start: Score of the starting solution.
        reference: Score of the reference solution.
        log: Normalise log-transformed scores.
    """

    start: float | None = None
    reference: float | None = None
    log: bool = False
    name: str = "normalized_score"

    def __call__(self, output: Any, target: Any = None, **context: Any) -> Score:
        """Score the output's number on the scale from ``start`` (0) to ``reference`` (1).

        Raises:
            ScoringError: ``start`` or ``reference`` missing or equal, or values not positive on a log scale.
        """
        bounds = target if isinstance(target, dict) else {}
        start = bounds.get("start", self.start)
        ref = bounds.get("reference", self.reference)
        if start is None or ref is None:
            raise ScoringError("normalized_score needs start and reference (as arguments or a target dict)")
        raw = parse_number(output)
        if raw is None:
            return _rule(self.name, None, context, reason=f"no number in the output {str(output)[:80]!r}")
        value = normalized_score(raw, float(start), float(ref), log=self.log)
        return Score(self.name, value, Provenance.RULE.value, source=self.name, item_id=context.get("item_id"),
                     details={"raw": raw, "start": start, "reference": ref})
