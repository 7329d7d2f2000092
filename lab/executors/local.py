"""Where a batch's runs execute: the executor protocol and the default, threads in this process."""

from __future__ import annotations

import concurrent.futures as cf
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from lab.experiment import Combo, Experiment
    from lab.runner import Outcome, Runner


class Batch(Protocol):
    """The runs of one batch in flight on an executor."""

    def submit(self, combo: Combo, key: str, resume_id: str | None) -> cf.Future[Outcome]:
        """Run one combination (resuming run ``resume_id`` when given); the future gives its outcome."""
        ...

    def shutdown(self, *, cancel: bool = False) -> None:
        """Wait for the submitted runs; with ``cancel``, first ask them to stop (they end ``interrupted``)."""
        ...


class Executor(Protocol):
    """Runs a batch's combinations somewhere. Every executor runs each combination with
    :meth:`lab.runner.Runner.run_one`, so a run is recorded the same wherever it executes."""

    name: str

    def start(self, runner: Runner, experiment: Experiment, workers: int) -> Batch:
        """Begin a batch of ``experiment`` for ``runner`` (``workers``: runs at once, where the executor
        decides that itself it may ignore it)."""
        ...


class LocalExecutor:
    """Runs combinations in threads of this process (the default)."""

    name = "local"

    def start(self, runner: Runner, experiment: Experiment, workers: int) -> Batch:
        return _ThreadBatch(runner, experiment, workers)


class _ThreadBatch:
    def __init__(self, runner: Runner, experiment: Experiment, workers: int) -> None:
        self.runner, self.experiment = runner, experiment
        self.pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lab-run")

    def submit(self, combo: Combo, key: str, resume_id: str | None) -> cf.Future[Outcome]:
        return self.pool.submit(self.runner.run_one, self.experiment, combo, key, resume_id)

    def shutdown(self, *, cancel: bool = False) -> None:
        self.pool.shutdown(wait=True, cancel_futures=cancel)
