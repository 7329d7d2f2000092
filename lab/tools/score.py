"""The ``score`` tool: an intermediate score of the agent's current work, on tasks that give them.

It is the agent's side of the human expert's ``score`` command: both go through
:func:`lab.scoring.runs.score_intermediate`, so the scores are recorded the same way (``score`` events,
``final`` false, at the run's working time) and best-of-k by budget sees them for both.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lab.tools.base import ToolContext, ToolError, tool
from lab.tools.submit import parse_answer


@tool(name="score")
def score(ctx: ToolContext, answer: Annotated[str, Field(max_length=2000)] = "") -> str:
    """Get an intermediate score for your current work (the final score comes when you submit).

    Args:
        answer: An answer to score, where the task scores answers; leave empty to score your files.
        ctx: The run's tool context (injected; not shown to the model).
    """
    from lab.scoring import ScoringError
    from lab.scoring.runs import score_intermediate
    from lab.tasks.errors import TaskScoringError

    task = ctx.require_task("score")
    if ctx.recorder is None:
        raise ToolError("tool 'score' records the scores on the run and this call has no run")
    try:
        _, shown = score_intermediate(task, parse_answer(answer) if answer else None, recorder=ctx.recorder,
                                      sandbox=ctx.sandbox)
    except (ScoringError, TaskScoringError) as e:
        raise ToolError(f"score: {e}") from None
    return shown
