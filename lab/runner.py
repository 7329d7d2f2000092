"""Run an experiment's (task × loop × model × seed) combinations: concurrently, with a progress bar,
past individual failures, scoring each submission; a rerun skips what is done and resumes what was
interrupted from its last checkpoint.

```python
from lab.experiment import Experiment
from lab.runner import Runner

batch = Runner(store, concurrency=4).run(Experiment.from_yaml("demo.yaml"))
batch.frame()       # one row per combination: status, answer, scores, run id
```
"""

from __future__ import annotations

import concurrent.futures as cf
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lab.agents.run import Approver, ModelLoader
from lab.executors import Executor, LocalExecutor
from lab.experiment import Experiment
from lab.models.base import ChatModel
from lab.pipeline import Outcome, RunContext, SandboxOpener, StopSignal, previous_runs
from lab.preflight import check_experiment
from lab.sandbox.snapshot_store import SnapshotStore, snapshot_cap
from lab.traces.protocol import Store
from lab.traces.schema import RunStatus

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class BatchResult:
    """The outcomes of one :meth:`Runner.run`."""

    outcomes: list[Outcome]

    def count(self, status: str) -> int:
        """How many combinations ended with ``status`` (``done``, ``failed``, ``skipped`` ...)."""
        return sum(o.status == status for o in self.outcomes)

    @property
    def errored(self) -> list[Outcome]:
        """The combinations that failed or whose scoring raised."""
        return [o for o in self.outcomes if o.errored]

    def frame(self) -> pd.DataFrame:
        """Outcomes as a DataFrame, one row per combination, scores as ``score.<name>`` columns."""
        import pandas as pd

        rows = [{**{k: v for k, v in o.__dict__.items() if k != "scores"},
                 **{f"score.{k}": v for k, v in o.scores.items()}} for o in self.outcomes]
        return pd.DataFrame(rows)


def _load_model(name: str) -> ChatModel:
    from lab.models import load_model

    return load_model(name)


class Runner:
    """Runs experiments into a trace store: picks the combinations not done yet, hands them to an executor,
    shows progress, and stops them on Ctrl-C.

    Args:
        store: Where runs are recorded (checkpoints go beside it).
        concurrency: Combinations at once (default: the experiment's ``concurrency``).
        progress: Show a progress bar (terminal or notebook).
        model_loader: Turns a model name into a model (default :func:`lab.models.load_model`).
        sandbox_opener: Opens a task's sandbox for a run (default :func:`open_task_sandbox`).
        approver: Decides tool-call approvals for loops that ask (a batch cannot wait for a person).
        executor: Where runs execute (default :class:`lab.executors.LocalExecutor`, threads here; or
            :class:`lab.executors.RayExecutor`, a Ray cluster).
        wait: Wait for combinations another live runner owns (default: skip them as ``owned``).
    """

    def __init__(self, store: Store, *, concurrency: int | None = None, progress: bool = True,
                 model_loader: ModelLoader | None = None, sandbox_opener: SandboxOpener | None = None,
                 approver: Approver | None = None, executor: Executor | None = None, wait: bool = False) -> None:
        self.store = store
        self.executor = executor or LocalExecutor()
        self.concurrency = concurrency
        self.progress = progress
        self.model_loader = model_loader or _load_model
        self.sandbox_opener = sandbox_opener
        self.approver = approver
        self.wait = wait
        self._stop = StopSignal()

    def context(self, experiment: Experiment) -> RunContext:
        """What each run of ``experiment`` gets from this runner."""
        return RunContext(experiment, self.store, self.model_loader, self.sandbox_opener, self.approver,
                          self._stop, self.wait)

    def run(self, experiment: Experiment) -> BatchResult:
        """Run every combination not done yet; return all outcomes (done ones as ``skipped``).

        The experiment is checked first (:func:`lab.preflight.check_experiment`): a bad task, loop, model,
        tool or scorer raises before anything runs.

        Raises:
            ExperimentError: The experiment's check failed (nothing was run or recorded).

        Ctrl-C pauses the running combinations at their next step (recorded as ``interrupted``, resumable
        by running the experiment again) and re-raises.
        """
        from tqdm.auto import tqdm

        tasks = check_experiment(experiment, models=self.model_loader is _load_model)
        combos = experiment.combos(tasks)
        previous = previous_runs(self.store, experiment)
        outcomes: dict[int, Outcome] = {}
        todo = []
        for i, c in enumerate(combos):
            key = c.key(experiment)
            prev = previous.get(key, [])
            done = next((r for r in prev if r["status"] == RunStatus.DONE.value), None)
            if done is not None:
                outcomes[i] = Outcome.of(c, key, "skipped", done["run_id"],
                                         scores=self.store.final_scores(done["run_id"]))
            else:
                todo.append((i, c, key, None))  # run_combo resumes what the store says is resumable
        workers = self.concurrency or experiment.concurrency
        bar = tqdm(total=len(combos), initial=len(outcomes), desc=experiment.name, unit="run",
                   disable=not self.progress)
        self._stop.clear()
        pool = self.executor.start(self.context(experiment), workers)
        futures = {pool.submit(c, key, resume): i for i, c, key, resume in todo}
        try:
            for fut in cf.as_completed(futures):
                i = futures[fut]
                outcomes[i] = fut.result()
                bar.update(1)
                bar.set_postfix(failed=sum(o.status == "failed" for o in outcomes.values()), refresh=False)
        except KeyboardInterrupt:
            self.stop()
            for f in futures:
                f.cancel()
            pool.shutdown(cancel=True)
            bar.close()
            raise
        pool.shutdown()
        bar.close()
        snapshots = SnapshotStore.beside(self.store.path)
        if snapshots.size() > snapshot_cap():  # past the cap: finished runs' step archives go, oldest first
            snapshots.gc(self.store)
        return BatchResult([outcomes[i] for i in sorted(outcomes)])

    def stop(self) -> None:
        """Ask the running combinations to pause at their next step (they end ``interrupted``, resumable) and
        the ones not started yet not to start."""
        self._stop.set()
