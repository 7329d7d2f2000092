"""Errors raised by model backends."""

from __future__ import annotations

from lab.errors import LabError


class ModelError(LabError):
    """A model cannot answer. ``retryable`` says whether the same request may succeed if repeated.

    Args:
        message: What went wrong and where (model name, file, URL).
        retryable: True for transient faults (server down, rate limit, malformed or truncated output).
        retry_after: Seconds the server asked to wait before retrying (its ``Retry-After``), if it said.
    """

    def __init__(self, message: str, *, retryable: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class ModelNotFound(ModelError):
    """A model name, file or directory that does not exist or cannot be loaded."""


class ModelOutputError(ModelError):
    """The model's output is malformed, truncated or does not match the requested schema (retryable)."""

    def __init__(self, message: str, *, raw: str = "", retryable: bool = True) -> None:
        super().__init__(message, retryable=retryable)
        self.raw = raw
