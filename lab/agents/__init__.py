"""Agent loops on LangGraph: DERA's Researcher–Decider, a ReAct tool agent, a SUPER repository set-up
agent, and the human expert's session; shared limits, checkpointing (pause, resume, fork).

```python
agent = ReActAgent(load_model("smollm2"), tools=[shell], limits=Limits(steps=10))
run = agent.start(store, "How many files are in /etc?", sandbox=sandbox)
result = run.run()                  # RunResult(status, answer, stop_reason, steps, tokens ...)
child = run.fork(2, tool_result="42").run()
```
"""

from lab.agents.dera import PROMPTS, DeraAgent, DeraPrompts
from lab.agents.limits import Limits
from lab.agents.react import REACT_SYSTEM, ReActAgent
from lab.agents.repo_setup import REPO_SETUP_SYSTEM, RepoSetupAgent, SuperObservations
from lab.agents.run import AWAITING_APPROVAL, LOOPS, Agent, AgentError, AgentRun, Approver, RunResult

__all__ = [
    "AWAITING_APPROVAL", "LOOPS", "Agent", "AgentError", "AgentRun", "Approver", "DeraAgent", "DeraPrompts", "Limits",
    "PROMPTS", "REACT_SYSTEM", "REPO_SETUP_SYSTEM", "ReActAgent", "RepoSetupAgent", "RunResult",
    "SuperObservations",
]
