"""Scoring a run of a task, the same way whoever ran it: an agent, a human expert, a batch or a notebook.

Every run kind goes through these two functions, so a human session and an agent doing the same work on
the same task get the same scores:

- :func:`score_run`: the final scores — the task's scorer, its normalisation, landmarks over the run's
  tool outputs and the entrypoint check over the run's sandbox commands, both read from the trace store;
- :func:`score_intermediate`: an intermediate score the solver asks for (the human's ``score`` command,
  the agent's ``score`` tool), recorded as ``score`` events with ``final`` false.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lab.scoring.base import ScoringError
from lab.traces.schema import ACTION, CONTENT, EventKind, Score

if TYPE_CHECKING:
    from lab.sandbox.base import Sandbox
    from lab.tasks.model import Task
    from lab.traces.recorder import RunRecorder

__all__ = ["score_intermediate", "score_run"]


HUMAN_OUTPUTS = ("kernel_cell", "terminal_output")
"""``human_action``s whose ``content`` a human saw, as an agent sees its tool results (JupyterLab sessions)."""


def score_run(task: Task, answer: Any, *, store: Any, run_id: str, sandbox: Sandbox | None = None,
              use_fallback: bool = True) -> list[Score]:
    """The final scores of a run of ``task`` (not recorded; the caller records them).

    Args:
        task: The task (a :class:`lab.tasks.Task`).
        answer: What the run submitted.
        store: The trace store holding the run.
        run_id: The run: its tool results are the transcript landmarks are matched in, its sandbox
            commands what the entrypoint check reads.
        sandbox: The run's sandbox (script and METR scoring).
        use_fallback: Consult the task's fallback scorer (e.g. an LLM judge).

    Raises:
        TaskScoringError: The task's scorer failed (see :func:`lab.tasks.score_task`).
    """
    from lab.tasks.scoring import executions_of, score_task

    transcript = [str(e.attrs.get(CONTENT, "")) for e in store.events(
        run_id, kinds=[EventKind.TOOL_RESULT.value, EventKind.HUMAN_ACTION.value])
        if e.kind == EventKind.TOOL_RESULT.value or e.attrs.get(ACTION) in HUMAN_OUTPUTS]
    return score_task(task, answer, sandbox=sandbox, transcript=transcript,
                      executions=executions_of(store, run_id) if task.entrypoint else None,
                      use_fallback=use_fallback)


def score_intermediate(task: Task, answer: Any, *, recorder: RunRecorder, sandbox: Sandbox | None = None,
                       agent: str | None = None) -> tuple[list[Score], str]:
    """Score the solver's current work now and record it as intermediate ``score`` events.

    Args:
        task: The task; it must allow intermediate scores (``scoring.intermediate``).
        answer: An answer to score (``None``: the task scores the sandbox's state, as METR families do).
        recorder: The run's recorder (scores carry its working time).
        sandbox: The run's sandbox.
        agent: Who asked (recorded on the events).

    Returns:
        The scores, and what the solver is shown (the values, or a note when the task hides them).

    Raises:
        ScoringError: The task gives no intermediate scores.
        TaskScoringError: Its scorer failed.
    """
    from lab.tasks.scoring import score_task

    if not task.scoring.intermediate:
        raise ScoringError("this task does not give intermediate scores")
    scores = score_task(task, answer, sandbox=sandbox)
    for s in scores:
        s.final = False
        recorder.score(s, agent=agent)
    if task.scoring.visible_to_agent:
        return scores, "score: " + ", ".join(f"{s.scorer}={s.value}" for s in scores)
    return scores, "score recorded (not shown for this task)"
