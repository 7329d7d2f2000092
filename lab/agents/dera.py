"""DERA's Researcher–Decider dialog (Nair et al., 2023): a completion refined by two agents talking.

The Decider drafts an answer; the Researcher studies the input, names its crucial points and what the
draft gets wrong or leaves out; the Decider revises or keeps its answer; repeat until the Decider says
its answer is final or the round limit (``limits.steps``) is hit. Default role prompts follow the paper
for its three tasks: open-ended medical QA (``qa``), summarising a doctor–patient conversation
(``summary``) and writing a care plan (``care_plan``). Replies are JSON (a response schema, so backends
with constrained decoding always produce one). Each turn is an ``agent_message`` event under its role's
span (``decider`` / ``researcher``), with the role's model call beside it.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from langgraph.graph import END, START, StateGraph

from lab.agents.limits import Limits, record_limit
from lab.agents.run import LOOPS, Agent, AgentError, AgentRun, LoopState, ModelLoader
from lab.models.base import ChatModel, Message, Sampling
from lab.models.errors import ModelOutputError
from lab.traces.schema import agent_message

if TYPE_CHECKING:
    from lab.tasks.model import Task

DeraKind = Literal["qa", "summary", "care_plan"]
DECIDER, RESEARCHER = "decider", "researcher"


@dataclass(frozen=True)
class DeraPrompts:
    """The role prompts (system messages) of one task kind.

    Attributes:
        draft: The Decider's instructions for its first answer.
        researcher: The Researcher's instructions for each turn.
        decider: The Decider's instructions for answering the Researcher.
        input_label: How the input is introduced (``Question``, ``Conversation``).
        answer_max_chars: Longest answer allowed in a reply (bounds constrained decoding).
    """

    draft: str
    researcher: str
    decider: str
    input_label: str = "Input"
    answer_max_chars: int = 1500


PROMPTS: dict[str, DeraPrompts] = {
    "qa": DeraPrompts(
        draft="You are the Decider, a physician answering an open-ended medical exam question. Give a short "
              "answer (a diagnosis, drug, test or mechanism: a few words) and a brief explanation.",
        researcher="You are the Researcher, a physician checking a colleague's answer. Read the question "
                   "carefully. Name the crucial points of the question (the key findings and what exactly "
                   "is asked) and say what the current answer gets wrong or leaves out. Be brief. If the "
                   "answer is right, say so and set done to true.",
        decider="You are the Decider. Weigh the Researcher's points against the question. Revise your answer "
                "if they show it is wrong or incomplete, otherwise keep it. Set final to true when your "
                "answer is final.",
        input_label="Question", answer_max_chars=200),
    "summary": DeraPrompts(
        draft="You are the Decider, a physician. Summarise the doctor-patient conversation for the medical "
              "record: the presenting symptoms, relevant history, and the key positive and negative findings.",
        researcher="You are the Researcher. Compare the summary with the conversation, one point at a time: "
                   "name information that is missing, wrong, or not supported by the conversation. Set done "
                   "to true when the summary is complete and correct.",
        decider="You are the Decider. Accept or reject each of the Researcher's suggestions (you decide, they "
                "advise) and rewrite the summary with the ones you accept. Set final to true when done.",
        input_label="Conversation", answer_max_chars=1500),
    "care_plan": DeraPrompts(
        draft="You are the Decider, a physician. Write a care plan for this patient from the conversation: "
              "the next steps for diagnosis, treatment, patient education and follow-up.",
        researcher="You are the Researcher. Check the care plan against the patient's information: name steps "
                   "that are missing, unsafe, or not supported by the conversation. Set done to true when the "
                   "plan is complete and safe.",
        decider="You are the Decider. Accept or reject each of the Researcher's suggestions and rewrite the "
                "care plan with the ones you accept. Set final to true when done.",
        input_label="Conversation", answer_max_chars=1500),
}


def _schema(props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def _text(n: int) -> dict[str, Any]:
    return {"type": "string", "maxLength": n}


class DeraState(LoopState, total=False):
    """The DERA loop's state: the task's prompt, the Researcher–Decider dialog so far, and whether the
    Researcher has said it is done."""

    input: str
    dialog: list[dict[str, Any]]
    researcher_done: bool


@LOOPS.register("dera")
class DeraAgent(Agent):
    """The Researcher–Decider loop.

    Args:
        decider: The Decider's model.
        researcher: The Researcher's model (default: the Decider's).
        kind: Task kind whose default prompts to use: ``qa``, ``summary`` or ``care_plan``.
        prompts: Role prompts replacing the defaults of ``kind``.
        limits: ``steps`` is the most dialog rounds (one Researcher and one Decider turn each).
        sampling: Sampling parameters for both roles.
        message_max_chars: Longest dialog message allowed in a reply.
    """

    name = "dera"
    entry = RESEARCHER

    def __init__(self, decider: ChatModel, researcher: ChatModel | None = None, *, kind: DeraKind = "qa",
                 prompts: DeraPrompts | None = None, limits: Limits | None = None,
                 sampling: Sampling | None = None, message_max_chars: int = 600) -> None:
        if kind not in PROMPTS:
            raise AgentError(f"unknown DERA task kind {kind!r}; known: {', '.join(PROMPTS)}")
        self.decider = decider
        self.researcher = researcher or decider
        self.kind = kind
        self.prompts = prompts or PROMPTS[kind]
        self.limits = limits or Limits(steps=3)
        self.sampling = sampling or Sampling()
        n, a = message_max_chars, self.prompts.answer_max_chars
        self.draft_schema = _schema({"answer": _text(a), "explanation": _text(n)})
        self.researcher_schema = _schema({"message": _text(n), "done": {"type": "boolean"}})
        self.decider_schema = _schema({"message": _text(n), "answer": _text(a), "final": {"type": "boolean"}})

    @classmethod
    def from_options(cls, model: ChatModel, task: Task, options: dict[str, Any], *, budgets: Limits | None = None,
                     sampling: Sampling | None = None, model_loader: ModelLoader | None = None) -> DeraAgent:
        """A DERA dialog for ``task``: ``model`` decides; options ``kind``, ``prompts``, ``message_max_chars``,
        ``researcher_model`` (a model name) and ``rounds`` (default 3; ``budgets.steps`` wins)."""
        opts = dict(options)
        rounds = opts.pop("rounds", 3)
        rounds = (budgets.steps if budgets is not None and "steps" in budgets.model_fields_set else None) or rounds
        limits = Limits().over(task.budgets, budgets, {"steps": rounds})
        researcher = opts.pop("researcher_model", None)
        if researcher is not None:
            from lab.models import load_model

            researcher = (model_loader or load_model)(researcher)
        return cls(model, researcher, limits=limits, sampling=sampling, **opts)

    def describe(self) -> dict[str, Any]:
        """The loop's settings as recorded on a run: kind, both roles' models, prompts, limits, sampling."""
        return {"loop": self.name, "kind": self.kind, "decider": self.decider.name,
                "researcher": self.researcher.name, "prompts": dataclasses.asdict(self.prompts),
                "limits": self.limits.to_dict(),
                "sampling": {k: v for k, v in dataclasses.asdict(self.sampling).items() if v is not None}}

    def model_name(self) -> str:
        """The Decider's model name, or ``decider+researcher`` when the roles use different models."""
        d, r = self.decider.name, self.researcher.name
        return d if d == r else f"{d}+{r}"

    def state_schema(self) -> type:
        """:class:`DeraState`."""
        return DeraState

    def initial_state(self, prompt: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """The task's prompt and an empty dialog."""
        return {"input": prompt, "dialog": [], "researcher_done": False}

    # -- graph -----------------------------------------------------------------------------------

    def build(self, graph: StateGraph, run: AgentRun) -> None:
        """``draft`` (the Decider's first answer), then Researcher and Decider turns until one ends the dialog."""
        graph.add_node("draft", lambda s: self._draft(s, run))
        graph.add_node(RESEARCHER, lambda s: self._researcher(s, run))
        graph.add_node(DECIDER, lambda s: self._decider(s, run))
        graph.add_conditional_edges(START, lambda s: RESEARCHER if s.get("dialog") else "draft",
                                    ["draft", RESEARCHER])
        graph.add_conditional_edges("draft", _next(RESEARCHER), [RESEARCHER, END])
        graph.add_conditional_edges(RESEARCHER, _next(DECIDER), [DECIDER, END])
        graph.add_conditional_edges(DECIDER, _next(RESEARCHER), [RESEARCHER, END])

    def _context(self, s: dict[str, Any]) -> str:
        lines = [f"{self.prompts.input_label}:\n{s['input']}", f"\nCurrent answer: {s.get('answer') or '(none)'}"]
        if s["dialog"]:
            lines.append("\nDialog so far:")
            lines += [f"{t['role'].capitalize()}: {t['message']}" for t in s["dialog"]]
        return "\n".join(lines)

    def _turn(self, s: dict[str, Any], run: AgentRun, role: str, system: str, user: str,
              schema: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """One role turn: the parsed reply (``None`` after too many invalid ones) and the state update."""
        span, span_update = run.role_span(s, role)
        update: dict[str, Any] = dict(span_update or {})
        model = self.decider if role == DECIDER else self.researcher
        messages = [Message("system", system),
                    Message("user", f"{user}\n\nReply in JSON with the keys {', '.join(schema['properties'])}.")]
        tokens = s["tokens"]
        with run.recorder.within(span):
            for attempt in range(1, self.limits.invalid_replies + 1):
                try:
                    resp = run.chat(model, messages, agent=role, response_schema=schema, sampling=self.sampling)
                except ModelOutputError as e:
                    run.recorder.emit(*agent_message(invalid_reply=str(e), invalid_count=attempt), agent=role)
                    messages.append(Message("user", f"That reply was not valid JSON ({e}). Reply again, in JSON."))
                    continue
                tokens += resp.usage.input_tokens + resp.usage.output_tokens
                reply = _parse(resp.parsed, resp.message.content, role, s.get("answer"))
                run.recorder.emit(*agent_message(
                    content=reply.get("message") or reply.get("explanation", ""), answer=reply.get("answer"),
                    final=reply.get("final", reply.get("done")), round_number=s["step"]), agent=role)
                update["tokens"] = tokens
                return reply, update
            record_limit(run.recorder, "invalid_replies", self.limits.invalid_replies, self.limits.invalid_replies,
                         agent=role)
        update.update(tokens=tokens, done=True, stop_reason="invalid_replies")
        return None, update

    def _draft(self, s: dict[str, Any], run: AgentRun) -> dict[str, Any]:
        run.boundary()
        reply, update = self._turn(s, run, DECIDER, self.prompts.draft,
                                   f"{self.prompts.input_label}:\n{s['input']}", self.draft_schema)
        if reply is None:
            return update
        turn = {"role": DECIDER, "message": reply.get("explanation", ""), "answer": reply["answer"]}
        return {**update, "answer": reply["answer"], "dialog": [turn]}

    def _researcher(self, s: dict[str, Any], run: AgentRun) -> dict[str, Any]:
        run.boundary()
        if (stop := run.check_limits(s, agent=self.name)) is not None:
            return stop
        reply, update = self._turn(s, run, RESEARCHER, self.prompts.researcher, self._context(s),
                                   self.researcher_schema)
        if reply is None:
            return update
        turn = {"role": RESEARCHER, "message": reply["message"], "done": bool(reply.get("done"))}
        return {**update, "dialog": [*s["dialog"], turn], "researcher_done": turn["done"]}

    def _decider(self, s: dict[str, Any], run: AgentRun) -> dict[str, Any]:
        reply, update = self._turn(s, run, DECIDER, self.prompts.decider, self._context(s), self.decider_schema)
        update["step"] = s["step"] + 1
        if reply is None:
            return update
        final = bool(reply.get("final"))
        turn = {"role": DECIDER, "message": reply["message"], "answer": reply["answer"], "final": final}
        update.update(answer=reply["answer"] or s.get("answer"), dialog=[*s["dialog"], turn])
        if final or s.get("researcher_done"):
            update.update(done=True, stop_reason="final")
        return update


def _next(node: str):
    return lambda s: END if s.get("done") else node


def _parse(parsed: Any, content: str, role: str, current: Any) -> dict[str, Any]:
    """A reply as a dict; plain text (from a backend that ignored the schema) is read leniently."""
    if not isinstance(parsed, dict):
        try:
            parsed = json.loads(content)
        except (TypeError, ValueError):
            parsed = None
    if isinstance(parsed, dict):
        if role == RESEARCHER:
            return {"message": str(parsed.get("message", "")), "done": bool(parsed.get("done"))}
        answer = str(parsed.get("answer") or current or "")
        return {"message": str(parsed.get("message", parsed.get("explanation", ""))), "answer": answer,
                "explanation": str(parsed.get("explanation", "")), "final": bool(parsed.get("final"))}
    text = (content or "").strip()
    if role == RESEARCHER:
        return {"message": text, "done": False}
    return {"message": text, "answer": text or str(current or ""), "explanation": text, "final": False}
