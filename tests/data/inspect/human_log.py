"""Build a ``human_agent``-style Inspect log of the arith task offline (no person, no Docker connection).

A real ``human_agent`` run needs a person at a sandbox terminal. This takes a real log of the arith task
and rewrites it the way ``human_agent`` records a session: the plan is one ``human_agent`` step, each
sample's store holds ``HumanAgentState`` (the answer, the human clock, ``task score`` checks), the
transcript is the agent span with the session's commands, and the sample is scored on the expert's answer
with the task's own scorer (``match``, numeric). ``human_agent_arith.json`` next to this file was made
with ``python human_log.py AGENT_LOG.eval human_agent_arith.json``.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

import shortuuid

# (expert, answers by sample id, minutes by sample id): one expert per epoch
SESSIONS = [
    ("alice", {"q1": "5", "q2": "8", "q3": "6"}, {"q1": 4.0, "q2": 6.5, "q3": 3.0}),
    ("bob", {"q1": "5", "q2": "8", "q3": "7"}, {"q1": 9.0, "q2": 12.0, "q3": 7.5}),
]


def human_log(src: str, dst: str) -> None:
    """Write a human_agent-style log of the arith task to ``dst`` (``.eval`` or ``.json``), from ``src``."""
    from inspect_ai.log import EvalPlan, EvalPlanStep, read_eval_log, write_eval_log
    from inspect_ai.model import ChatMessageAssistant, ModelOutput
    from inspect_ai.scorer import Score

    log = read_eval_log(src)
    log.eval.model = "none/none"
    log.eval.eval_id, log.eval.run_id, log.eval.task_id = (shortuuid.uuid() for _ in range(3))
    log.plan = EvalPlan(steps=[EvalPlanStep(solver="human_agent", params={
        "answer": True, "intermediate_scoring": True, "record_session": True, "user": None})])
    samples = []
    for epoch, (expert, answers, minutes) in enumerate(SESSIONS, start=1):
        for s in [s for s in log.samples if s.epoch == 1]:
            h = s.model_copy(deep=True)
            h.epoch = epoch
            answer, secs = answers[str(s.id)], minutes[str(s.id)] * 60
            correct = answer == s.target
            h.metadata = {**(h.metadata or {}), "expert": expert}
            h.messages = [h.messages[0], ChatMessageAssistant(content=answer)]
            h.output = ModelOutput.from_content("none/none", answer)
            h.scores = {"match": Score(value="C" if correct else "I", answer=answer)}
            h.store = {
                "HumanAgentState:instructions": s.messages[0].text,
                "HumanAgentState:answer": answer,
                "HumanAgentState:running_state": False,
                "HumanAgentState:accumulated_time": secs,
                "HumanAgentState:scorings": [
                    {"time": round(secs * 0.6, 1), "scores": [{"value": "I", "answer": "?"}]}],
                "HumanAgentState:logs": {"bash.log": f"$ python3 -c 'print({s.target})'\n{s.target}\n"},
            }
            init = {e.id for e in h.events if e.event == "span_begin" and e.name == "init"}
            h.events = [e for e in h.events if getattr(e, "id", None) in init or e.span_id in init]  # no agent steps
            h.model_usage, h.total_time, h.working_time = {}, secs + 5.0, secs
            if h.started_at:
                h.completed_at = (datetime.fromisoformat(str(h.started_at)) + timedelta(seconds=secs + 5.0)).isoformat()
            samples.append(h)
    log.samples = samples
    log.stats.model_usage = {}
    log.results = None
    write_eval_log(log, dst)


if __name__ == "__main__":
    human_log(sys.argv[1], sys.argv[2])
