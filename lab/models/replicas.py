"""Every local GPU used: one replica of a local model per GPU that holds it, or one copy spread over all GPUs
(``device_map="auto"``) when it is larger than a GPU; the CPU when there is none."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lab.models.base import ChatModel, ChatResponse, Message

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".gguf")


def replica_devices(model_bytes: int, gpu_free: list[int], *, headroom: float = 1.3) -> list[str]:
    """Where the copies of a local model go.

    Args:
        model_bytes: Size of the weights.
        gpu_free: Free memory of each GPU in bytes (empty: no GPU).
        headroom: Memory needed per byte of weights (activations, KV cache of a batch).

    Returns:
        ``["cuda:0", "cuda:1", ...]`` (one replica on each GPU with room for it), ``["auto"]`` (one copy spread
        over the GPUs: no single GPU holds it), or ``["cpu"]``.
    """
    if not gpu_free:
        return ["cpu"]
    fits = [f"cuda:{i}" for i, free in enumerate(gpu_free) if free >= model_bytes * headroom]
    return fits or ["auto"]


def weights_bytes(path: str | Path) -> int:
    """Bytes of a model's weight files (a directory's, or one ``.gguf`` file)."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.suffix in WEIGHT_SUFFIXES and f.is_file())


class ReplicatedModel:
    """The same model on several devices: each call goes to the replica with the fewest calls in flight (each
    replica still batches the calls it gets). Other attributes are the first replica's.

    Args:
        replicas: The copies (same model, same name).
    """

    def __init__(self, replicas: Sequence[ChatModel]) -> None:
        self.replicas = list(replicas)
        self.name = replicas[0].name
        self.in_flight = [0] * len(replicas)
        self._lock = threading.Lock()

    def chat(self, messages: list[Message], **kwargs: Any) -> ChatResponse:
        """Answer with the least busy replica (see :class:`lab.models.ChatModel`)."""
        with self._lock:
            i = min(range(len(self.replicas)), key=self.in_flight.__getitem__)
            self.in_flight[i] += 1
        try:
            return self.replicas[i].chat(messages, **kwargs)
        finally:
            with self._lock:
                self.in_flight[i] -= 1

    def __getattr__(self, name: str) -> Any:
        if name == "replicas":
            raise AttributeError(name)
        return getattr(self.replicas[0], name)


def load_local(path: str | Path, *, name: str, device: str = "auto", **options: Any) -> ChatModel:
    """A local transformers model on every GPU (see :func:`replica_devices`), or on ``device`` when given.

    Raises:
        ModelNotFound: The files are missing or not a model.
        ModelError: CUDA ran out of memory while loading.
    """
    import torch

    from lab.models.transformers_backend import TransformersModel

    if device != "auto" or not torch.cuda.is_available():
        return TransformersModel(path, name=name, device=device, **options)
    free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
    devices = replica_devices(weights_bytes(path), free)
    models = [TransformersModel(path, name=name, device=d, **options) for d in devices]
    return models[0] if len(models) == 1 else ReplicatedModel(models)
