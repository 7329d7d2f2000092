"""Re-scoring: run new scorers over stored runs without re-running the agents."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pandas as pd

from lab.scoring.base import Scorer, ScoringError, as_scores
from lab.traces.rows import RunRow
from lab.traces.schema import ANSWER, EventKind
from lab.traces.store import TraceStore

OUTPUT_ATTR = ANSWER


def run_output(store: TraceStore, run_id: str) -> Any:
    """A run's final answer: the ``lab.answer`` attribute of its ``run_finished`` event (``None`` if the
    run recorded none)."""
    for ev in reversed(store.events(run_id, kinds=[EventKind.RUN_FINISHED])):
        if OUTPUT_ATTR in ev.attrs:
            return ev.attrs[OUTPUT_ATTR]
    return None


def rescore(
    store: TraceStore,
    scorer: Scorer,
    *,
    runs: Iterable[str] | pd.DataFrame | None = None,
    target: Mapping[str, Any] | Callable[[RunRow], Any] | None = None,
    context: Callable[[RunRow], dict[str, Any]] | None = None,
    output: Callable[[TraceStore, str], Any] = run_output,
) -> pd.DataFrame:
    """Score stored runs' outputs with ``scorer`` and record the scores on those runs.

    Each score is appended to its run (final, at the run's elapsed time), so ``runs_frame`` gains a
    ``score.<scorer>`` column; nothing already recorded changes.

    Args:
        store: The trace store.
        scorer: Any scorer (``get_scorer(...)``, an LLM judge, a panel).
        runs: Run ids, or a runs frame (default: every finished run).
        target: The expected answer per run: a mapping task → target, or a function of the run's row.
        context: Extra scorer context per run (e.g. ``{"question": ...}``), a function of the run's row.
        output: How to read a run's output (default :func:`run_output`).

    Returns:
        One row per score recorded (``run_id``, ``task``, ``scorer``, ``dimension``, ``value``, ``label``),
        plus one row with ``value`` NaN and a ``skipped`` reason per run that recorded no output.

    Raises:
        ScoringError: The scorer failed on a run (the message names it); scores of earlier runs stay.
    """
    if runs is None:
        rows = [r for r in store.list_runs() if r["status"] == "done"]
    elif isinstance(runs, pd.DataFrame):
        rows = [store.get_run(r) for r in runs["run_id"]]
    else:
        rows = [store.get_run(r) for r in runs]
    out: list[dict[str, Any]] = []
    for run in rows:
        rid, task = run["run_id"], run["task"]
        answer = output(store, rid)
        if answer is None:
            out.append({"run_id": rid, "task": task, "skipped": "the run recorded no output"})
            continue
        tgt = target(run) if callable(target) else (target or {}).get(task) if task is not None else None
        ctx = {"item_id": task, **(context(run) if context else {})}
        try:
            scores = as_scores(scorer(answer, tgt, **ctx))
        except ScoringError as e:
            raise ScoringError(f"re-scoring run {rid} (task {task!r}): {e}") from e
        for s in scores:
            store.add_score(rid, s, elapsed=run["elapsed"] or 0.0)
            out.append({"run_id": rid, "task": task, "scorer": s.scorer, "dimension": s.dimension,
                        "value": s.value, "label": s.label, "skipped": None})
    return pd.DataFrame(out, columns=["run_id", "task", "scorer", "dimension", "value", "label", "skipped"])
