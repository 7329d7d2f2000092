"""DERA's open-ended MedQA (``question_open, answer, options, answer_idx, meta_info`` per JSONL line)."""

from __future__ import annotations

import re
from pathlib import Path

from lab.tasks.errors import TaskSpecError
from lab.tasks.jsonl import iter_jsonl
from lab.tasks.model import Limits, ScorerRef, Scoring, Task

__all__ = ["answer_aliases", "load_medqa_open", "MEDQA_INSTRUCTIONS"]

MEDQA_INSTRUCTIONS = (
    "Answer the following clinical question. Reply with the single best answer as a short phrase "
    "(a diagnosis, drug, test, mechanism ...), not a letter and not an explanation.\n\n{question}"
)
_MINOR = frozenset({"of", "and", "the", "with", "or", "in", "to", "for"})
_FIELDS = ("question_open", "answer", "options", "answer_idx", "meta_info")


def answer_aliases(answer: str) -> list[str]:
    """Accepted forms of a gold answer: itself, the phrase before a trailing parenthetical, and the
    parenthetical when it abbreviates that phrase.

    ``"Tetralogy of Fallot (TOF)"`` gives ``["Tetralogy of Fallot (TOF)", "Tetralogy of Fallot", "TOF"]``;
    ``"t(9;22)"`` and ``"105 / (105 + 45)"`` stay whole.
    """
    out = [answer.strip()]
    m = re.fullmatch(r"\s*(.*?[A-Za-z0-9])\s+\(([^()]*[A-Za-z][^()]*)\)\s*", answer)
    if m and re.search(r"[A-Za-z]{2}", m.group(1)):
        outer, inner = m.group(1), m.group(2).strip()
        out.append(outer)
        words = re.findall(r"[A-Za-z]+", outer)
        initials = {"".join(w[0] for w in words).lower(),
                    "".join(w[0] for w in words if w.lower() not in _MINOR).lower()}
        if re.sub(r"[^a-z]", "", inner.lower()) in initials:
            out.append(inner)
    return list(dict.fromkeys(a for a in out if a))


def load_medqa_open(path: str | Path, *, suite: str | None = "medqa-open", split: str | None = None,
                    judge: ScorerRef | None = None, limit: int | None = None) -> list[Task]:
    """Load DERA MedQA-open questions as tasks.

    Each task's id is ``<split>-<line>``; the instructions hold ``question_open`` only (the options are kept
    in ``metadata`` for analysis, never shown). Scoring is ``normalized_match`` against the answer's aliases
    (:func:`answer_aliases`), then ``judge`` (an LLM judge scorer) for answers the rule does not accept.

    Args:
        path: A DERA ``medqa_open_*.jsonl`` file.
        suite: Suite name.
        split: Split name used in ids (defaults from the file name: ``dev``/``test``).
        judge: Scorer consulted when the alias match fails (its verdict is a score with model provenance).
        limit: Load only the first ``limit`` questions.

    Raises:
        TaskSpecError: A line is malformed or lacks one of the DERA fields.
    """
    path = Path(path)
    split = split or path.stem.rsplit("_", 1)[-1]
    tasks: list[Task] = []
    for n, rec in iter_jsonl(path, _FIELDS):
        if limit is not None and len(tasks) >= limit:
            break
        q, ans = rec["question_open"], rec["answer"]
        if not isinstance(q, str) or not q.strip() or not isinstance(ans, str) or not ans.strip():
            raise TaskSpecError(f"{path}:{n}: 'question_open' and 'answer' must be non-empty strings")
        tasks.append(Task(
            id=f"{split}-{n:04d}", suite=suite, kind="qa",
            instructions=MEDQA_INSTRUCTIONS.format(question=q.strip()),
            inputs={"question": q.strip()},
            scoring=Scoring(scorer="normalized_match", target=answer_aliases(ans), fallback=judge),
            budgets=Limits(steps=20),
            answer=ans,
            metadata={"options": rec["options"], "answer_idx": rec["answer_idx"], "meta_info": rec["meta_info"],
                      "question_mc": rec.get("question"), "line": n, "split": split},
            source=str(path),
        ))
    return tasks
