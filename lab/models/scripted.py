"""A deterministic model: scripted replies and tool calls in order, a Python callable, or an exact replay
of a recorded run's model outputs. Most loop tests use it."""

from __future__ import annotations

import copy
import json
import threading
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Union

from lab.models.backend import BaseChatModel, ChatRequest
from lab.models.base import ChatResponse, Message, ToolCall, Usage
from lab.models.errors import ModelError, ModelNotFound, ModelOutputError
from lab.models.recording import OUTPUT_MESSAGES, RETRYABLE, response_from_attrs
from lab.traces.protocol import Store
from lab.traces.schema import ERROR_MESSAGE, ERROR_TYPE, EventKind

Reply = Union[str, Message, ChatResponse, ToolCall, list[ToolCall], dict[str, Any], BaseException]
"""One scripted reply:

- ``str``: the assistant's text;
- ``ToolCall`` or a list of them: tool calls;
- ``dict``: ``{"content": str, "tool_calls": [{"name", "arguments", "id"?}], "json": value,
  "finish_reason": str}`` (every key optional; ``json`` becomes the content and the parsed value);
- ``Message`` / ``ChatResponse``: returned as given;
- an exception: raised (a recorded failure, replayed as such).
"""
ReplyFn = Callable[[list[Message]], Reply]
"""A callable computing the reply from the conversation so far."""


class ScriptedModel(BaseChatModel):
    """Returns scripted replies in order, or what a callable computes from the messages.

    Args:
        script: A sequence of replies (each a :data:`Reply` or a :data:`ReplyFn` called for that turn),
            or one :data:`ReplyFn` answering every turn.
        name: Model name recorded with each call.
        cycle: Start the script over when it runs out (otherwise a :class:`ModelError`).

    Attributes:
        requests: Every ``messages`` list the model was asked, in order (for assertions).
    """

    system = "scripted"

    def __init__(self, script: Sequence[Reply | ReplyFn] | ReplyFn, *, name: str = "scripted",
                 cycle: bool = False) -> None:
        self.name = name
        self._fn: ReplyFn | None = script if callable(script) and not isinstance(script, Sequence) else None
        self._script = [] if self._fn else list(script)  # type: ignore[arg-type]
        self._cycle = cycle
        self._queues: dict[str | None, deque[Reply | ReplyFn]] = {None: deque(self._script)}
        self._by_agent = False
        self._lock = threading.Lock()
        self._n = 0
        self.requests: list[list[Message]] = []

    # -- constructors ----------------------------------------------------------------------------

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedModel:
        """A script from a JSON or YAML file: a list of replies, or ``{"replies": [...], "cycle": bool}``.

        Raises:
            ModelNotFound: The file is missing or is not a valid script.
        """
        p = Path(path)
        if not p.is_file():
            raise ModelNotFound(f"scripted model file not found: {p}")
        text = p.read_text(encoding="utf-8")
        try:
            if p.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as e:  # noqa: BLE001 - any parse error is a bad script
            raise ModelNotFound(f"scripted model file {p} is not valid {p.suffix[1:] or 'JSON'}: {e}") from e
        cycle = False
        if isinstance(data, dict):
            cycle = bool(data.get("cycle", False))
            data = data.get("replies")
        if not isinstance(data, list):
            raise ModelNotFound(f"scripted model file {p}: expected a list of replies or {{'replies': [...]}}")
        for i, item in enumerate(data):
            if not isinstance(item, (str, dict)):
                raise ModelNotFound(f"scripted model file {p}: reply {i} must be a string or a mapping")
        return cls(data, name=f"scripted:{p.name}", cycle=cycle)

    @classmethod
    def replay(cls, store: Store, run_id: str, *, name: str | None = None) -> ScriptedModel:
        """Replay the model outputs recorded in a run, exactly and per agent.

        Each agent (``agent`` argument of :meth:`chat`) gets the responses its recorded calls got, in
        order, so interleaved multi-agent runs replay deterministically. Recorded failures are raised
        again as :class:`ModelError` (with the recorded ``retryable``).

        Args:
            store: A :class:`lab.traces.TraceStore`.
            run_id: The recorded run.
            name: Model name (default ``replay:<run_id>``).

        Raises:
            ModelNotFound: The run recorded no model calls.
        """
        events = store.events(run_id, kinds=[EventKind.MODEL_CALL])
        if not events:
            raise ModelNotFound(f"run {run_id} recorded no model calls to replay")
        model = cls([], name=name or f"replay:{run_id}")
        model._by_agent = True
        model._queues = {}
        for ev in events:
            item: Reply
            if OUTPUT_MESSAGES in ev.attrs:
                item = response_from_attrs(ev.attrs)
            else:
                cls_ = ModelOutputError if ev.attrs.get(ERROR_TYPE) == "ModelOutputError" else ModelError
                item = cls_(ev.attrs.get(ERROR_MESSAGE, "recorded model failure"),
                            retryable=bool(ev.attrs.get(RETRYABLE, False)))
            model._queues.setdefault(ev.agent, deque()).append(item)
        return model

    # -- the ChatModel interface -----------------------------------------------------------------

    @property
    def remaining(self) -> int:
        """Scripted replies not yet used (all agents)."""
        return sum(len(q) for q in self._queues.values())

    def _chat(self, req: ChatRequest) -> ChatResponse:
        """The next scripted reply (see :class:`lab.models.ChatModel`).

        Raises:
            ModelError: The script ran out, or a scripted failure.
            ModelOutputError: A response schema was given and the reply is not JSON.
        """
        with self._lock:
            self.requests.append(list(req.messages))
            n = self._n
            self._n += 1
            item = self._next(req.agent)
        if callable(item) and not isinstance(item, BaseException):
            item = item(list(req.messages))
        return self._response(item, n, req.messages, req.response_schema)

    # -- helpers ---------------------------------------------------------------------------------

    def _next(self, agent: str | None) -> Reply | ReplyFn:
        if self._fn is not None:
            return self._fn
        key = agent if self._by_agent else None
        queue = self._queues.get(key)
        if not queue and self._cycle and self._script:
            queue = self._queues[key] = deque(self._script)
        if not queue:
            who = f" for agent {agent!r}" if self._by_agent else ""
            raise ModelError(f"{self.name}: scripted model ran out of replies{who} after {self._n - 1} calls")
        return queue.popleft()

    def _response(self, item: Reply, n: int, messages: list[Message],
                  response_schema: dict[str, Any] | None) -> ChatResponse:
        if isinstance(item, BaseException):
            raise item if isinstance(item, ModelError) else ModelError(f"{self.name}: {item}") from item
        if isinstance(item, ChatResponse):
            return copy.deepcopy(item)  # replayed responses keep their recorded latency and usage
        parsed = None
        if isinstance(item, Message):
            msg, finish = copy.deepcopy(item), None
        elif isinstance(item, str):
            msg, finish = Message("assistant", item), None
        elif isinstance(item, ToolCall) or (isinstance(item, list) and all(isinstance(c, ToolCall) for c in item)):
            calls = [item] if isinstance(item, ToolCall) else item
            msg, finish = Message("assistant", "", tool_calls=copy.deepcopy(calls)), None
        elif isinstance(item, dict):
            content = item.get("content", "")
            if "json" in item:
                parsed = item["json"]
                content = json.dumps(parsed)
            calls = [ToolCall(c.get("id") or "", c["name"], dict(c.get("arguments") or {}))
                     for c in item.get("tool_calls") or []]
            msg, finish = Message("assistant", content, tool_calls=calls), item.get("finish_reason")
        else:
            raise ModelError(f"{self.name}: reply {n} has unsupported type {type(item).__name__}")
        for i, call in enumerate(msg.tool_calls):
            call.id = call.id or f"call_{n}_{i}"
        if response_schema is not None and parsed is None and not msg.tool_calls:
            try:
                parsed = json.loads(msg.content)
            except ValueError as e:
                raise ModelOutputError(f"{self.name}: reply {n} is not JSON but a response schema was given",
                                       raw=msg.content) from e
        if response_schema is not None and parsed is not None:
            import jsonschema  # slow to import; only validation needs it

            try:
                jsonschema.validate(parsed, response_schema)
            except jsonschema.ValidationError as e:
                raise ModelOutputError(f"{self.name}: reply {n} does not match the response schema: {e.message}",
                                       raw=msg.content) from e
        finish = finish or ("tool_calls" if msg.tool_calls else "stop")
        usage = Usage(_count_tokens(m.content for m in messages), _count_tokens([msg.content]))
        return ChatResponse(msg, finish_reason=finish, usage=usage, model=self.name, parsed=parsed)


def _count_tokens(texts: Iterable[str]) -> int:
    """A deterministic stand-in for token counts: whitespace-separated words."""
    return sum(len(t.split()) for t in texts)


__all__ = ["Reply", "ReplyFn", "ScriptedModel"]
