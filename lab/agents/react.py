"""The tool-using ReAct agent (ChemCrow): think, call a tool, observe, repeat; ``submit`` ends the run.

Graph: ``agent`` (one model turn) → [``approve`` (optional, LangGraph ``interrupt``)] → ``tools`` → ``agent``
... until ``submit`` or a limit. A reply that is not a valid tool call becomes an observation asking for
one (at most ``limits.invalid_replies`` in a row); a tool that fails becomes an error observation; a dead
sandbox ends the run as failed.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt

from lab.agents.limits import Limits, record_limit
from lab.agents.run import LOOPS, Agent, AgentRun, LoopState, ModelLoader
from lab.models.base import ChatModel, Message, Sampling, ToolCall
from lab.models.errors import ModelOutputError
from lab.sandbox.base import SandboxUnavailable
from lab.tools.base import Tool, ToolArgumentError, ToolContext, ToolError
from lab.tools.registry import get_tools
from lab.tools.submit import SUBMIT, submit
from lab.traces.schema import STEP, agent_message, human_action, tool_call, tool_result

if TYPE_CHECKING:
    from lab.tasks.model import Task

REACT_SYSTEM = (
    "You are an expert assistant solving a task with tools. Think about what to do next, then call exactly "
    "one tool. You will see its result. Repeat until you know the answer, then call `submit` with the "
    "final answer."
)

Observation = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
"""A view of the conversation shown to the model (e.g. with old tool outputs truncated)."""


class ReActState(LoopState, total=False):
    """The ReAct loop's state: the conversation, the tool calls of the latest reply, tools' own state and the
    open step span."""

    messages: list[dict[str, Any]]
    calls: list[dict[str, Any]]
    tool_state: dict[str, Any]
    step_span: str | None


def to_message(d: dict[str, Any]) -> Message:
    """A stored message dict as a :class:`Message`."""
    calls = [ToolCall(c["id"], c["name"], c["arguments"]) for c in d.get("tool_calls") or []]
    return Message(d["role"], d.get("content") or "", tool_calls=calls, tool_call_id=d.get("tool_call_id"),
                   name=d.get("name"))


@LOOPS.register("react")
class ReActAgent(Agent):
    """A ReAct tool agent.

    Args:
        model: The chat model.
        tools: The tools it may call (``submit`` is added when missing).
        system_prompt: The instructions before the task.
        limits: Step, token, time and invalid-reply limits.
        approval: ``True`` to ask a person before every tool call except ``submit``, or the names of the
            tools that need approval.
        sampling: Sampling parameters (``max_tokens`` ...; ``tool_choice`` defaults to ``required``).
        observation: How past tool outputs are shown to the model (default: in full).
        snapshot_steps: Snapshot the sandbox after every step (what forks restore).
        tool_timeout: Seconds a sandbox command may run.
        answer: Turns the submitted text into the run's answer (default: as is).
        name: The loop's name in traces.
    """

    name = "react"
    entry = "agent"

    def __init__(self, model: ChatModel, tools: Sequence[Tool] = (), *, system_prompt: str = REACT_SYSTEM,
                 limits: Limits | None = None, approval: bool | Sequence[str] = False,
                 sampling: Sampling | None = None, observation: Observation | None = None,
                 snapshot_steps: bool = True, tool_timeout: float = 300.0,
                 answer: Callable[[str], Any] | None = None, name: str | None = None) -> None:
        self.model = model
        tools = list(tools)
        if not any(t.name == SUBMIT for t in tools):
            tools.append(submit)
        self.tools = {t.name: t for t in tools}
        self.system_prompt = system_prompt
        self.limits = limits or Limits()
        self.approval = approval
        # every step must call a tool (a reply that calls none is invalid), so ask for one unless told otherwise
        sampling = sampling or Sampling()
        self.sampling = sampling if sampling.tool_choice else dataclasses.replace(sampling, tool_choice="required")
        self.observation = observation
        self.snapshot_steps = snapshot_steps
        self.tool_timeout = tool_timeout
        self.parse_answer = answer
        if name:
            self.name = name

    @classmethod
    def from_options(cls, model: ChatModel, task: Task, options: dict[str, Any], *, budgets: Limits | None = None,
                     sampling: Sampling | None = None, model_loader: ModelLoader | None = None) -> ReActAgent:
        """The loop for ``task``, with the task's tools plus the option ``tools`` (names); other options are
        keyword arguments of the class."""
        opts = dict(options)
        tools = get_tools(list(task.tools) + list(opts.pop("tools", [])))
        return cls(model, cls.own_tools(tools), limits=Limits().over(task.budgets, budgets), sampling=sampling,
                   **opts)

    @classmethod
    def own_tools(cls, tools: list[Tool]) -> list[Tool]:
        """Of the tools a task and options name, the ones this loop takes as extra tools."""
        return tools

    # -- description -----------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The loop's settings as recorded on a run: model, tools, system prompt, limits, approval, sampling."""
        return {"loop": self.name, "model": self.model.name, "tools": sorted(self.tools),
                "system_prompt": self.system_prompt, "limits": self.limits.to_dict(),
                "approval": self.approval if isinstance(self.approval, bool) else list(self.approval),
                "sampling": {k: v for k, v in dataclasses.asdict(self.sampling).items() if v is not None}}

    def model_name(self) -> str:
        """The model's name."""
        return self.model.name

    def state_schema(self) -> type:
        """:class:`ReActState`."""
        return ReActState

    def initial_state(self, prompt: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """The conversation opened by ``prompt`` as the user's message; no calls yet."""
        return {"messages": [{"role": "user", "content": prompt}], "calls": [], "tool_state": {},
                "step_span": None}

    def needs_approval(self, tool_name: str) -> bool:
        """Whether a call of ``tool_name`` waits for approval (``submit`` never does)."""
        if tool_name == SUBMIT or not self.approval:
            return False
        return self.approval is True or tool_name in self.approval

    # -- graph -----------------------------------------------------------------------------------

    def build(self, graph: StateGraph, run: AgentRun) -> None:
        """``agent`` (the model's turn) → ``approve`` (when a call needs it) → ``tools``, until done."""
        graph.add_node("agent", lambda s: self._agent(s, run))
        graph.add_node("approve", lambda s: self._approve(s, run))
        graph.add_node("tools", lambda s: self._tools(s, run))
        graph.add_edge(START, "agent")
        graph.add_conditional_edges("agent", self._after_agent, ["agent", "approve", "tools", END])
        graph.add_edge("approve", "tools")
        graph.add_conditional_edges("tools", lambda s: END if s["done"] else "agent", ["agent", END])

    def _after_agent(self, s: dict[str, Any]) -> str:
        if s["done"]:
            return END
        if not s["calls"]:
            return "agent"
        return "approve" if any(self.needs_approval(c["name"]) for c in s["calls"]) else "tools"

    def _agent(self, s: dict[str, Any], run: AgentRun) -> dict[str, Any]:
        run.boundary()
        if (stop := run.check_limits(s, agent=self.name)) is not None:
            return stop
        step = s["step"] + 1
        shown = self.observation(s["messages"]) if self.observation else s["messages"]
        messages = [Message("system", self.system_prompt), *map(to_message, shown)]
        specs = [t.spec for t in self.tools.values()]
        with run.recorder.span(f"step {step}", agent=self.name, attrs={STEP: step}) as span:
            try:
                resp = run.chat(self.model, messages, agent=self.name, tools=specs, sampling=self.sampling)
            except ModelOutputError as e:
                return self._invalid(s, run, step, span, "", str(e), tokens=0)
        tokens = s["tokens"] + resp.usage.input_tokens + resp.usage.output_tokens
        msg = resp.message
        problem = self._check_calls(msg.tool_calls)
        if problem:
            return self._invalid(s, run, step, span, msg.content, problem, tokens=tokens, calls=msg.tool_calls)
        calls = [{"id": c.id or f"call_{step}_{i}", "name": c.name, "arguments": c.arguments}
                 for i, c in enumerate(msg.tool_calls)]
        assistant = {"role": "assistant", "content": msg.content, "tool_calls": calls}
        return {"step": step, "tokens": tokens, "invalid": 0, "calls": calls, "step_span": span,
                "messages": [*s["messages"], assistant]}

    def _check_calls(self, calls: list[ToolCall]) -> str | None:
        if not calls:
            return "the reply calls no tool"
        for c in calls:
            t = self.tools.get(c.name)
            if t is None:
                return f"there is no tool named {c.name!r}"
            try:
                t.validate(c.arguments)
            except ToolArgumentError as e:
                return str(e)
        return None

    def _invalid(self, s: dict[str, Any], run: AgentRun, step: int, span: str, content: str, problem: str, *,
                 tokens: int, calls: list[ToolCall] | None = None) -> dict[str, Any]:
        invalid = s["invalid"] + 1
        run.recorder.emit(*agent_message(invalid_reply=problem, invalid_count=invalid, content=content),
                          agent=self.name, parent_id=span)
        if calls:
            content = (content + "\n" if content else "") + "; ".join(f"{c.name}({c.arguments})" for c in calls)
        note = (f"That was not a valid tool call: {problem}. Call one of the tools "
                f"({', '.join(self.tools)}) with arguments matching its schema; call `{SUBMIT}` to answer.")
        update = {"step": step, "tokens": tokens, "invalid": invalid, "calls": [], "step_span": span,
                  "messages": [*s["messages"], {"role": "assistant", "content": content},
                               {"role": "user", "content": note}]}
        if invalid >= self.limits.invalid_replies:
            record_limit(run.recorder, "invalid_replies", self.limits.invalid_replies, invalid, agent=self.name)
            update.update(done=True, stop_reason="invalid_replies")
        return update

    def _approve(self, s: dict[str, Any], run: AgentRun) -> dict[str, Any]:
        decisions = []
        for c in s["calls"]:
            if not self.needs_approval(c["name"]):
                decisions.append({"action": "approve"})
                continue
            raw = interrupt({"tool": c["name"], "arguments": c["arguments"], "id": c["id"], "step": s["step"]})
            decisions.append(_decision(raw))
        calls = []
        for c, d in zip(s["calls"], decisions, strict=True):
            if self.needs_approval(c["name"]):
                run.recorder.emit(*human_action(
                    action="approval", decision=d["action"], tool_name=c["name"], tool_call_id=c["id"],
                    arguments=d["arguments"] if d["action"] == "edit" else None,
                    reason=d["reason"] if d["action"] == "reject" else None), parent_id=s.get("step_span"))
            if d["action"] == "edit":
                c = {**c, "arguments": d["arguments"], "edited": True}
            elif d["action"] == "reject":
                c = {**c, "rejected": d["reason"]}
            calls.append(c)
        return {"calls": calls}

    def _tools(self, s: dict[str, Any], run: AgentRun) -> dict[str, Any]:
        rec = run.recorder
        tool_state = dict(s.get("tool_state") or {})
        ctx = ToolContext(sandbox=run.sandbox, recorder=rec, state=tool_state, timeout=self.tool_timeout,
                          task=run.get_task)
        messages = list(s["messages"])
        update: dict[str, Any] = {}
        with rec.within(s.get("step_span")):
            for c in s["calls"]:
                rec.emit(*tool_call(tool_name=c["name"], tool_call_id=c["id"], arguments=c["arguments"]),
                         agent=self.name)
                t0 = time.perf_counter()
                error_type = None
                ctx.attrs = {}
                if "rejected" in c:
                    obs, error_type = f"The reviewer rejected this call: {c['rejected']}", "Rejected"
                elif c["name"] == SUBMIT:
                    obs = str(c["arguments"].get("answer", ""))
                    answer = self.parse_answer(obs) if self.parse_answer else obs
                    update.update(done=True, stop_reason="submitted", answer=answer)
                else:
                    try:
                        obs = self.tools[c["name"]](c["arguments"], ctx)
                    except SandboxUnavailable:
                        raise
                    except ToolError as e:
                        obs, error_type = f"Error: {e}", type(e).__name__
                    except Exception as e:  # noqa: BLE001 - a failing tool is an observation, recorded
                        rec.error(e, where=f"tool:{c['name']}", agent=self.name)
                        obs, error_type = f"Error: {type(e).__name__}: {e}", type(e).__name__
                rec.emit(*tool_result(tool_name=c["name"], tool_call_id=c["id"], content=obs,
                                      duration=round(time.perf_counter() - t0, 6), error_type=error_type or None,
                                      extra=ctx.attrs), agent=self.name)
                messages.append({"role": "tool", "content": obs, "tool_call_id": c["id"], "name": c["name"]})
                if update.get("done"):
                    break
        update.update(messages=messages, calls=[], tool_state=tool_state)
        if self.snapshot_steps and run.sandbox is not None and not update.get("done"):
            update["snapshots"] = {**s["snapshots"], str(s["step"]): run.snapshot()}
        return update


def _decision(raw: Any) -> dict[str, Any]:
    """Normalise an approval decision (``"approve"``, ``True``, ``{"action": ...}``)."""
    if raw is True or raw == "approve":
        return {"action": "approve"}
    if raw is False or raw == "reject":
        return {"action": "reject", "reason": "rejected by the reviewer"}
    if isinstance(raw, dict) and raw.get("action") in ("approve", "edit", "reject"):
        if raw["action"] == "edit" and not isinstance(raw.get("arguments"), dict):
            raise ToolArgumentError("an edit decision needs 'arguments' (a dict)")
        if raw["action"] == "reject":
            return {"action": "reject", "reason": str(raw.get("reason") or "rejected by the reviewer")}
        return dict(raw)
    raise ToolArgumentError(f"unknown approval decision {raw!r}: use 'approve', "
                            "{'action': 'edit', 'arguments': {...}} or {'action': 'reject', 'reason': ...}")
