"""The repository set-up agent (SUPER): shell, Python and file edits in a sandbox, then a JSON answer.

With ``workbench="kernel"`` it works as SUPER's agents do, in cells of a persistent IPython kernel inside
the sandbox (``!cmd`` for shell commands) instead of shell calls.

It is the ReAct loop with SUPER's tools, prompt and observation policy: the latest step's output is
shown in full up to ``last_cap`` characters, older steps only their last ``older_cap`` characters (the
tail, where errors and results land), so long runs stay within the model's context.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from lab.agents.limits import Limits
from lab.agents.react import ReActAgent
from lab.agents.run import LOOPS
from lab.models.base import ChatModel, Sampling
from lab.tools.base import Tool
from lab.tools.kernel import kernel
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

REPO_SETUP_KERNEL_SYSTEM = (
    "You are setting up and running a research repository inside a Linux sandbox, to answer a question "
    "about its results. You work in a Jupyter notebook: each step, call `kernel` with one cell of Python "
    "code. Variables, imports and the working directory persist between cells; `!command` runs a shell "
    "command, `%cd DIR` changes directory, `%%writefile PATH` writes a file. Read the README, install what is "
    "needed, fix what breaks, run the experiment. When you have the result, call `submit` with the answer as "
    'JSON text, for example {"accuracy": 0.91}, or null when there is none. Avoid interactive commands.'
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
        """The conversation with each tool output cut to its tail (the latest step's to ``last_cap``)."""
        last_assistant = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
        out = []
        for i, m in enumerate(messages):
            if m["role"] == "tool":
                cap = self.last_cap if i > last_assistant else self.older_cap
                m = {**m, "content": truncate_tail(m.get("content") or "", cap)}
            out.append(m)
        return out

    def describe(self) -> dict[str, int]:
        """The policy's caps, as recorded in a run's loop description."""
        return {"last_cap": self.last_cap, "older_cap": self.older_cap}


@LOOPS.register("repo_setup")
class RepoSetupAgent(ReActAgent):
    """A SUPER-style repository set-up agent (a :class:`ReActAgent` with SUPER's tools and policy).

    Args:
        model: The chat model.
        tools: Extra tools besides the workbench's and ``submit`` (JSON).
        workbench: ``"shell"`` (``shell``, ``python``, ``edit_file``) or ``"kernel"`` (cells in a persistent
            IPython kernel in the sandbox, as SUPER's agents work).
        system_prompt: The instructions before the task (default: the workbench's).
        limits: Limits on steps, tokens and time.
        observation: The observation policy (default: :class:`SuperObservations`).
        **kwargs: Passed to :class:`ReActAgent` (``approval``, ``sampling``, ``snapshot_steps`` ...).
    """

    name = "repo_setup"

    def __init__(self, model: ChatModel, tools: Sequence[Tool] = (), *,
                 workbench: Literal["shell", "kernel"] = "shell", system_prompt: str | None = None,
                 limits: Limits | None = None, observation: SuperObservations | None = None,
                 sampling: Sampling | None = None, **kwargs: Any) -> None:
        if workbench not in WORKBENCHES:
            raise TypeError(f"workbench must be one of {sorted(WORKBENCHES)}, got {workbench!r}")
        own, prompt = WORKBENCHES[workbench]
        names = {t.name for t in own}
        self.workbench = workbench
        self.super_observation = observation or SuperObservations()
        super().__init__(model, [*own, *(t for t in tools if t.name not in names), submit_json],
                         system_prompt=system_prompt or prompt, limits=limits, observation=self.super_observation,
                         sampling=sampling, answer=parse_answer, **kwargs)

    @classmethod
    def own_tools(cls, tools: list[Tool]) -> list[Tool]:
        """The named tools besides the ones this loop always has."""
        return [t for t in tools if t.name not in (shell.name, python.name, edit_file.name)]

    def describe(self) -> dict[str, Any]:
        """The ReAct description plus the observation policy's caps and the workbench."""
        return {**super().describe(), "observation": self.super_observation.describe(), "workbench": self.workbench}


WORKBENCHES: dict[str, tuple[list[Tool], str]] = {
    "shell": ([shell, python, edit_file], REPO_SETUP_SYSTEM),
    "kernel": ([kernel], REPO_SETUP_KERNEL_SYSTEM),
}
"""The repo-setup loop's workbenches: their tools and default instructions."""
