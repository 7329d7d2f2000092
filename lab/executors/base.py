"""Where a batch's runs execute: the executor protocol and the registry of executors by name."""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from lab.errors import LabError
from lab.registry import Registry

if TYPE_CHECKING:
    from lab.experiment import Combo
    from lab.pipeline import Outcome, RunContext


class ExecutorError(LabError):
    """An executor cannot start (unknown name, no Ray installed, no cluster at the address ...)."""


class Batch(Protocol):
    """The runs of one batch in flight on an executor (the shape of a ``concurrent.futures`` executor)."""

    def submit(self, combo: Combo, key: str, resume_id: str | None) -> cf.Future[Outcome]:
        """Run one combination (resuming run ``resume_id`` when given); the future gives its outcome."""
        ...

    def shutdown(self, *, cancel: bool = False) -> None:
        """Wait for the submitted runs; with ``cancel`` (after the context's stop signal was set), the ones
        not started yet end at once."""
        ...


class Executor(Protocol):
    """Runs a batch's combinations somewhere. Every executor runs each combination with
    :func:`lab.pipeline.run_combo`, so a run is recorded the same wherever it executes."""

    name: str

    def start(self, context: RunContext, workers: int) -> Batch:
        """Begin a batch with ``context`` (``workers``: runs at once, where the executor decides that itself
        it may ignore it)."""
        ...


EXECUTORS: Registry[Callable[..., Executor]] = Registry("executor", modules=("lab.executors",), error=ExecutorError)
"""Executor classes by name; each takes ``address=`` (a cluster's, or ``None``)."""


def get_executor(name: str = "local", *, address: str | None = None) -> Executor:
    """The executor called ``name`` (``local``, ``ray`` ...; ``address`` is a cluster's).

    Raises:
        ExecutorError: Unknown name, or an address the executor does not take.
    """
    return EXECUTORS.get(name)(address=address)
