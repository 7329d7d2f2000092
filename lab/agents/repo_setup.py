"""The repository set-up agent (SUPER): shell, Python and file edits in a sandbox, then a JSON answer.

It is the ReAct loop with SUPER's tools, prompt and observation policy: the latest step's output is
shown in full up to ``last_cap`` characters, older steps only their last ``older_cap`` characters (the
tail, where errors and results land), so long runs stay within the model's context.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lab.agents.limits import Limits
from lab.agents.react import ReActAgent
from lab.agents.run import LOOPS
from lab.models.base import ChatModel, Sampling
from lab.tools.base import Tool
from lab.tools.shell import edit_file, python, shell
from lab.tools.submit import parse_answer, submit_json

REPO_SETUP_SYSTEM = (
    "You are setting up and running a research repository inside a Linux sandbox, to answer a question "
    "about its results. Work step by step: read the README, install what is needed, fix what breaks, run "
    "the experiment. Each step, call exactly one tool: `shell` runs a command (the working directory "
    "persists), `python` runs a Python program, `edit_file` replaces exact text in a file (empty `old` "
    "writes the whole file). When you have the result, call `submit` with the answer as JSON text, "
    'for example {"accuracy": 0.91}, or null when there is none. Avoid interactive commands.'
)


def truncate_tail(text: str, cap: int) -> str:
    """``text`` cut to its last ``cap`` characters, saying how much was cut."""
    if len(text) <= cap:
        return text
    return f"[... {len(text) - cap} characters cut ...]\n{text[-cap:]}"


class SuperObservations:
    """SUPER's observation policy: the latest step's outputs in full up to ``last_cap``, older tails.

    Args:
        last_cap: Characters of the latest step's outputs shown (its tail beyond that).
        older_cap: Characters shown of each older step's outputs (their tail).
    """

    def __init__(self, last_cap: int = 10_000, older_cap: int = 500) -> None:
        self.last_cap = last_cap
        self.older_cap = older_cap

    def __call__(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        last_assistant = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
        out = []
        for i, m in enumerate(messages):
            if m["role"] == "tool":
                cap = self.last_cap if i > last_assistant else self.older_cap
                m = {**m, "content": truncate_tail(m.get("content") or "", cap)}
            out.append(m)
        return out

    def describe(self) -> dict[str, int]:
        return {"last_cap": self.last_cap, "older_cap": self.older_cap}


@LOOPS.register("repo_setup")
class RepoSetupAgent(ReActAgent):
    """A SUPER-style repository set-up agent (a :class:`ReActAgent` with SUPER's tools and policy).

    Args:
        model: The chat model.
        tools: Extra tools besides ``shell``, ``python``, ``edit_file`` and ``submit`` (JSON).
        system_prompt: The instructions before the task.
        limits: Limits on steps, tokens and time.
        observation: The observation policy (default: :class:`SuperObservations`).
        **kwargs: Passed to :class:`ReActAgent` (``approval``, ``sampling``, ``snapshot_steps`` ...).
    """

    name = "repo_setup"

    def __init__(self, model: ChatModel, tools: Sequence[Tool] = (), *, system_prompt: str = REPO_SETUP_SYSTEM,
                 limits: Limits | None = None, observation: SuperObservations | None = None,
                 sampling: Sampling | None = None, **kwargs: Any) -> None:
        super().__init__(model, [shell, python, edit_file, *tools, submit_json], system_prompt=system_prompt,
                         limits=limits, observation=observation or SuperObservations(), sampling=sampling,
                         answer=parse_answer, **kwargs)

    @classmethod
    def own_tools(cls, tools: list[Tool]) -> list[Tool]:
        """The named tools besides the ones this loop always has."""
        return [t for t in tools if t.name not in (shell.name, python.name, edit_file.name)]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "observation": self.observation.describe()}
