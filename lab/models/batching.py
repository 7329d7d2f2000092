"""How many requests a local model decodes together: a small fixed number on CPU, and on CUDA as many as the
free GPU memory holds at the model's KV-cache cost per token."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedConfig

CPU_MAX_BATCH = 8
MAX_BATCH_CAP = 256  # beyond this, one decode step is compute-bound even for small models
CONTEXT_TOKENS = 4096  # the prompt + reply length each slot is sized for (capped by the model's context)
MEMORY_FRACTION = 0.8  # of the free memory; the rest is left for activations, logits and the allocator


def kv_bytes_per_token(config: PreTrainedConfig, dtype_bytes: int) -> int:
    """Bytes of KV cache one token costs: keys and values over every layer and KV head.

    Args:
        config: A transformers model config (``num_hidden_layers``, ``num_attention_heads``,
            ``num_key_value_heads``, ``hidden_size``, optional ``head_dim``).
        dtype_bytes: Bytes per element of the cache (2 for bf16/fp16, 4 for fp32).
    """
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    per_token: int = 2 * config.num_hidden_layers * kv_heads * head_dim * dtype_bytes
    return per_token


def context_tokens(config: PreTrainedConfig) -> int:
    """Tokens each request is budgeted for: ``CONTEXT_TOKENS``, or the model's context when shorter."""
    context: int = getattr(config, "max_position_embeddings", None) or CONTEXT_TOKENS
    return min(CONTEXT_TOKENS, context)


def default_max_batch(*, cuda: bool, free_bytes: int = 0, kv_bytes_per_token: int = 1,
                      tokens_per_request: int = CONTEXT_TOKENS) -> int:
    """The number of requests decoded together by default.

    On CPU, ``CPU_MAX_BATCH``. On CUDA, as many requests of ``tokens_per_request`` tokens as
    ``MEMORY_FRACTION`` of the free memory holds at ``kv_bytes_per_token``, between 1 and ``MAX_BATCH_CAP``.

    Args:
        cuda: Whether the model runs on CUDA.
        free_bytes: Free GPU memory after the model's weights are loaded.
        kv_bytes_per_token: From :func:`kv_bytes_per_token`.
        tokens_per_request: From :func:`context_tokens`.
    """
    if not cuda:
        return CPU_MAX_BATCH
    per_request = max(1, kv_bytes_per_token * tokens_per_request)
    return max(1, min(MAX_BATCH_CAP, int(free_bytes * MEMORY_FRACTION) // per_request))


def cuda_max_batch(config: PreTrainedConfig, dtype_bytes: int, device: int = 0) -> tuple[int, int]:
    """``(max_batch, free_bytes)`` for a model of ``config`` on CUDA device ``device`` as it is now."""
    import torch

    free, _total = torch.cuda.mem_get_info(device)
    return default_max_batch(cuda=True, free_bytes=free, kv_bytes_per_token=kv_bytes_per_token(config, dtype_bytes),
                             tokens_per_request=context_tokens(config)), free
