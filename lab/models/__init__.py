"""Chat models: one interface, backends for local transformers, OpenAI-compatible servers, scripts.

``load_model("smollm2")`` gives the embedded default; ``load_model("openai:gpt-4o@https://...")`` a server;
``ScriptedModel([...])`` a deterministic script for tests.
"""

from lab.models.base import ChatModel, ChatResponse, Message, Sampling, ToolCall, ToolSpec, Usage
from lab.models.errors import ModelError, ModelNotFound, ModelOutputError
from lab.models.registry import load_model
from lab.models.scripted import ScriptedModel

__all__ = [
    "ChatModel", "ChatResponse", "Message", "ModelError", "ModelNotFound", "ModelOutputError", "Sampling",
    "ScriptedModel", "ToolCall", "ToolSpec", "Usage", "load_model",
]
