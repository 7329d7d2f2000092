"""The base class of every chat backend: it owns the public ``chat()`` (defaults, timing, retries,
recording); a backend implements one private method, :meth:`BaseChatModel._chat`.

A third-party backend subclasses :class:`BaseChatModel`, sets ``system`` and ``name``, implements ``_chat``,
and runs the model conformance suite (:mod:`lab.models.conformance`).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lab.models.base import ChatResponse, Message, Sampling, ToolSpec
from lab.models.errors import ModelError
from lab.models.recording import call_attrs, record_call

if TYPE_CHECKING:
    from lab.traces.recorder import RunRecorder


@dataclass(slots=True)
class ChatRequest:
    """One attempt at a call, as :meth:`BaseChatModel._chat` gets it.

    Attributes:
        messages: The conversation so far.
        tools: Tools the model may call.
        response_schema: JSON Schema the reply must follow.
        sampling: Sampling parameters (never ``None`` here).
        agent: The agent/role making the call.
        attempt: 1-based attempt number.
        server: The server address the attempt went to; an HTTP backend sets it (recorded, redacted).
    """

    messages: list[Message]
    tools: list[ToolSpec] | None
    response_schema: dict[str, Any] | None
    sampling: Sampling
    agent: str | None = None
    attempt: int = 1
    server: str | None = None


class BaseChatModel:
    """A :class:`~lab.models.ChatModel` whose ``chat()`` times, retries and records every call.

    Each call is one ``model_call`` event (request, and response or error, with latency and attempt); a
    failed attempt that is retried is recorded as an ``error`` event first. Only a :class:`ModelError`
    with ``retryable=True`` is retried, after ``backoff * 2**k`` seconds with jitter (or the error's
    ``retry_after``).

    Attributes:
        system: Backend family recorded as ``gen_ai.system`` (``transformers``, ``openai``, ``scripted``).
        name: Model name recorded with each call.
        retries: Further attempts after a retryable failure.
        backoff: First backoff in seconds.
    """

    system: str = "unknown"
    name: str = ""
    retries: int = 0
    backoff: float = 0.5

    def chat(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSpec] | None = None,
        response_schema: dict[str, Any] | None = None,
        sampling: Sampling | None = None,
        recorder: RunRecorder | None = None,
        agent: str | None = None,
    ) -> ChatResponse:
        """Answer ``messages`` (see :class:`lab.models.ChatModel`).

        Raises:
            ModelError: The backend failed and the failure is not retryable, or the retries are used up.
        """
        req = ChatRequest(list(messages), tools, response_schema, sampling or Sampling(), agent)
        t0 = time.perf_counter()
        for attempt in range(1, self.retries + 2):
            req.attempt = attempt
            try:
                _check_tool_choice(req, self.name)
                resp = self._chat(req)
            except ModelError as e:
                if e.retryable and attempt <= self.retries:
                    if recorder is not None:
                        recorder.error(e, where=f"{self.name} attempt {attempt}", agent=agent)
                    time.sleep(e.retry_after
                               or self.backoff * 2 ** (attempt - 1) * (1 + random.random()))
                    continue
                self._record(recorder, agent, req, error=e, latency=time.perf_counter() - t0)
                raise
            resp.latency = resp.latency or time.perf_counter() - t0  # replayed responses keep theirs
            self._record(recorder, agent, req, response=resp)
            return resp
        raise AssertionError("unreachable")  # pragma: no cover

    def _chat(self, req: ChatRequest) -> ChatResponse:
        """Answer one attempt. Raise :class:`ModelError` (``retryable`` when repeating may help)."""
        raise NotImplementedError

    def _record(self, recorder: RunRecorder | None, agent: str | None, req: ChatRequest, **outcome: Any) -> None:
        record_call(recorder, call_attrs(system=self.system, model=self.name, messages=req.messages,
                                         tools=req.tools, response_schema=req.response_schema,
                                         sampling=req.sampling, server=req.server, attempt=req.attempt,
                                         **outcome), agent=agent)


def _check_tool_choice(req: ChatRequest, name: str) -> None:
    choice, offered = req.sampling.tool_choice, [t.name for t in req.tools or []]
    if offered and choice not in (None, "auto", "required", "none") and choice not in offered:
        raise ModelError(f"{name}: tool_choice {choice!r} is not one of the offered tools {sorted(offered)}")


__all__ = ["BaseChatModel", "ChatRequest"]
