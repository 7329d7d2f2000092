"""Chat models and embedders: one interface, backends for local transformers, OpenAI-compatible servers,
deterministic scripts.

``load_model("smollm2")`` gives the embedded default; ``load_model("openai:gpt-4o@https://...")`` a server;
``ScriptedModel([...])`` a deterministic script for tests; ``load_embedder()`` the shipped MiniLM.
"""

from lab.models.base import ChatModel, ChatResponse, Message, Sampling, ToolCall, ToolSpec, Usage
from lab.models.embeddings import Embedder, TransformersEmbedder, load_embedder
from lab.models.errors import ModelError, ModelNotFound, ModelOutputError
from lab.models.openai_compat import OpenAIModel
from lab.models.registry import load_model
from lab.models.scripted import ScriptedModel
from lab.models.transformers_backend import TransformersModel

__all__ = [
    "ChatModel", "ChatResponse", "Embedder", "Message", "ModelError", "ModelNotFound", "ModelOutputError",
    "OpenAIModel", "Sampling", "ScriptedModel", "ToolCall", "ToolSpec", "TransformersEmbedder",
    "TransformersModel", "Usage", "load_embedder", "load_model",
]
