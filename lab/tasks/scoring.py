"""Scoring a submission the way its task says, with the scorers of ``lab.scoring``."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import lab.traces.schema as schema
from lab.tasks.errors import TaskScoringError
from lab.tasks.model import Task
from lab.traces.schema import Provenance, Score

if TYPE_CHECKING:
    from lab.sandbox import Sandbox
    from lab.scoring import Scorer
    from lab.tasks.metr import MetrSession
    from lab.traces.protocol import Store

__all__ = ["executions_of", "score_task", "scorer_context"]


def _normalised(task: Task, raw: float, start: float, reference: float) -> Score:
    from lab.scoring import normalized_score

    value = normalized_score(raw, start, reference)
    return Score("normalized_score", value, Provenance.RULE.value, source="normalized_score", item_id=task.key,
                 details={"raw": raw, "start": start, "reference": reference})


@lru_cache(maxsize=64)
def _scorer(name: str, args_json: str) -> Scorer:
    from lab.scoring import get_scorer

    return get_scorer(name, **json.loads(args_json))


def _get(name: str, args: dict[str, Any]) -> Scorer:
    """A scorer built once per process for each name and arguments (a judge loads its model once)."""
    return _scorer(name, json.dumps(args, sort_keys=True, default=str))


def scorer_context(task: Task, sandbox: Sandbox | None = None) -> dict[str, Any]:
    """The context a scorer gets for a submission to ``task``: ``item_id``, ``sandbox`` and ``question``."""
    return {"item_id": task.key, "sandbox": sandbox, "question": task.inputs.get("question", task.instructions)}


def score_task(task: Task, submission: Any, *, sandbox: Sandbox | None = None,
               transcript: list[str] | str | None = None, executions: list[dict[str, Any]] | None = None,
               session: MetrSession | None = None, use_fallback: bool = True) -> list[Score]:
    """Score a submission to ``task``.

    Rule or judge scorers are built from ``lab.scoring``'s registry; a scoring script runs in ``sandbox``;
    a METR task scores through its :class:`~lab.tasks.metr.MetrSession`. Tasks with starting and reference
    scores add a ``normalized_score``; tasks with landmarks add a ``landmarks`` score over ``transcript``.

    Args:
        task: The task.
        submission: What the solver submitted (text or parsed JSON).
        sandbox: The run's sandbox (script and METR scoring).
        transcript: The solver's outputs, for landmark scoring.
        executions: The run's sandbox commands (``command``, ``exit_code``, ``duration``, ``output``), for
            entrypoint scoring (see :func:`executions_of`).
        session: The METR session of the run (keeps the intermediate score log); one is made if absent.
        use_fallback: Consult the fallback scorer (e.g. an LLM judge) when the first does not give 1.0.

    Returns:
        The scores: the main one first.

    Raises:
        TaskScoringError: The scorer is unknown or raised, the script hung or printed no score, the METR
            family raised or returned nothing; the message names the task.
    """
    from lab.scoring import ScoringError, as_scores

    sc, key = task.scoring, task.key
    try:
        if task.metr is not None:
            from lab.tasks.metr import MetrSession

            if session is None:
                if sandbox is None:
                    raise TaskScoringError(f"task '{key}': METR scoring needs the run's sandbox")
                session = MetrSession(task, sandbox)
            raw = session.score("" if submission is None else str(submission))
            scores = [Score("metr_score", raw, Provenance.RULE.value, source=task.metr.family, item_id=key)]
        elif sc.script is not None:
            if sandbox is None:
                raise TaskScoringError(f"task '{key}': its scoring script needs the run's sandbox")
            scores = as_scores(_get("script", {"command": sc.script.command, "timeout": sc.script.timeout_s})(
                submission, item_id=key, sandbox=sandbox))
            s = scores[0]
            if s.value is None:
                raise TaskScoringError(f"task '{key}': scoring script failed: {s.details.get('reason')}"
                                       f"{' — ' + s.details['stderr'][-300:] if s.details.get('stderr') else ''}")
        else:
            assert sc.scorer is not None  # Scoring's validator: exactly one of scorer and script
            target = sc.target if sc.target is not None else task.answer
            ctx = scorer_context(task, sandbox)
            scores = as_scores(_get(sc.scorer, sc.args)(submission, target, **ctx))
            if use_fallback and sc.fallback is not None and scores[0].value != 1.0:
                judge = _get(sc.fallback.scorer, sc.fallback.args)
                scores += as_scores(judge(submission, task.answer, **ctx))
        start, reference = sc.starting_score, sc.reference_score  # Scoring's validator: both or neither
        if start is not None and reference is not None and scores[0].value is not None:
            scores.append(_normalised(task, scores[0].value, start, reference))
        if task.landmarks and transcript is not None:
            scores += as_scores(_get("landmarks", {})(transcript, task.landmarks, item_id=key))
        if task.entrypoint and executions is not None:
            scores += as_scores(_get("entrypoint", {})(executions, task.entrypoint, item_id=key))
    except ScoringError as e:
        raise TaskScoringError(f"task '{key}': {e}") from e
    return scores


def executions_of(store: Store, run_id: str) -> list[dict[str, Any]]:
    """A run's recorded sandbox commands, and its kernel cells (``!python train.py`` runs there), in the shape
    the ``entrypoint`` scorer reads."""
    out = []
    for e in store.events(run_id, kinds=["sandbox_exec", "tool_result", "human_action"]):
        a = e.attrs
        cell = a.get(schema.KERNEL_OUTPUTS)
        if isinstance(cell, dict) and "code" in cell:
            out.append({"command": cell["code"], "exit_code": 0 if cell.get("status") == "ok" else 1,
                        "duration": cell.get("duration_s"),
                        "output": "\n".join(str(cell.get(k) or "") for k in ("stdout", "stderr", "error"))})
            continue
        if schema.COMMAND_ARGS not in a:
            continue
        out.append({"command": " ".join(map(str, a[schema.COMMAND_ARGS])), "exit_code": a.get(schema.EXIT_CODE),
                    "duration": a.get(schema.SANDBOX_DURATION),
                    "output": f"{a.get(schema.STDOUT, '')}\n{a.get(schema.STDERR, '')}"})
    return out
