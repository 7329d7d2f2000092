"""The default executor: threads in this process."""

from __future__ import annotations

import concurrent.futures as cf
from typing import TYPE_CHECKING

from lab.executors.base import EXECUTORS, Batch, ExecutorError
from lab.pipeline import run_combo

if TYPE_CHECKING:
    from lab.experiment import Combo
    from lab.pipeline import Outcome, RunContext


@EXECUTORS.register("local")
class LocalExecutor:
    """Runs combinations in threads of this process (the default)."""

    name = "local"

    def __init__(self, address: str | None = None) -> None:
        if address:
            raise ExecutorError("--address is for the ray executor (use --executor ray)")

    def start(self, context: RunContext, workers: int) -> Batch:
        """Begin a batch with ``context`` on a pool of ``workers`` threads."""
        return _ThreadBatch(context, workers)


class _ThreadBatch:
    def __init__(self, context: RunContext, workers: int) -> None:
        self.context = context
        self.pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="lab-run")

    def submit(self, combo: Combo, key: str, resume_id: str | None) -> cf.Future[Outcome]:
        return self.pool.submit(run_combo, self.context, combo, key, resume_id)

    def shutdown(self, *, cancel: bool = False) -> None:
        self.pool.shutdown(wait=True, cancel_futures=cancel)
