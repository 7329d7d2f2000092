"""The chat-model interface every backend implements (transformers, OpenAI-compatible, scripted)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from lab.traces.recorder import RunRecorder

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(slots=True)
class ToolCall:
    """A call the model asks for: ``name(arguments)``, answered by a ``tool`` message with ``id``."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(slots=True)
class Message:
    """One chat message. ``tool_calls`` on assistant messages, ``tool_call_id`` on tool results."""

    role: Role
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """OpenAI Chat Completions shape."""
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            d["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            d["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            d["name"] = self.name
        return d


@dataclass(slots=True)
class ToolSpec:
    """A tool the model may call: name, description and JSON Schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """OpenAI ``tools`` entry."""
        return {"type": "function",
                "function": {"name": self.name, "description": self.description, "parameters": self.parameters}}


@dataclass(slots=True)
class Sampling:
    """Sampling parameters; ``None`` means the backend's default.

    ``tool_choice`` (when tools are given): ``"auto"`` (call a tool or answer), ``"required"`` (call some
    tool), ``"none"`` (answer in text), or one tool's name (call that tool).
    """

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    tool_choice: str | None = None


@dataclass(slots=True)
class Usage:
    """Token counts of one call."""

    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(slots=True)
class ChatResponse:
    """What a model returned.

    Attributes:
        message: The assistant message (with ``tool_calls`` parsed).
        finish_reason: ``stop``, ``length``, ``tool_calls`` or ``error``.
        usage: Token counts.
        latency: Seconds from request to response.
        model: The model that answered.
        parsed: The parsed JSON when a response schema was given.
        attrs: More attributes for the call's ``model_call`` event (the bounded schema a local model was
            constrained to, a prompted fallback a server needed ...).
    """

    message: Message
    finish_reason: str = "stop"
    usage: Usage = field(default_factory=Usage)
    latency: float = 0.0
    model: str = ""
    parsed: Any = None
    attrs: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class ChatModel(Protocol):
    """A chat model. Backends record each call as a ``model_call`` event when given a recorder."""

    name: str

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
        """Answer ``messages``.

        Args:
            messages: The conversation so far.
            tools: Tools the model may call; a backend without native tool calls constrains its
                output to a tool-call JSON Schema.
            response_schema: JSON Schema the reply must follow (constrained decoding where possible).
            sampling: Sampling parameters.
            recorder: A :class:`lab.traces.RunRecorder`; the call is recorded as a ``model_call`` event.
            agent: Agent/role name recorded with the call.

        Raises:
            ModelError: The model cannot answer (missing files, server down after retries, 4xx).
        """
        ...
