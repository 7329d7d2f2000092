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
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lab.agents.dera import DeraAgent
from lab.agents.checkpointing import checkpointer_for
from lab.agents.limits import Limits
from lab.agents.react import ReActAgent
from lab.agents.repo_setup import RepoSetupAgent
from lab.agents.run import Agent, AgentRun, RunResult
from lab.executors import Executor, LocalExecutor
from lab.experiment import Combo, Experiment, LoopSpec
from lab.models.base import ChatModel, Sampling
from lab.tasks.environment import open_task_sandbox
from lab.tasks.model import Budgets, Task
from lab.tools.registry import get_tools
from lab.traces.recorder import RunRecorder
from lab.traces.schema import RunStatus
from lab.traces.store import TraceStore

ModelLoader = Callable[[str], ChatModel]
SandboxOpener = Callable[[Task, RunRecorder], Any]


@dataclass
class Outcome:
    """What happened to one combination.

    Attributes:
        key: The combination's stable key.
        task: Task key.
        loop: Loop label.
        model: Model name.
        seed: Seed.
        status: ``done``, ``failed``, ``interrupted``, ``awaiting_approval``, ``skipped`` (done before) or
            ``unavailable`` (cannot run on this machine; ``error`` says why).
        run_id: The run (``None`` when none was made).
        stop_reason: Why the run stopped.
        answer: The final answer.
        scores: Final scores by scorer name.
        error: The error, for failed or unavailable combinations.
    """

    key: str
    task: str
    loop: str
    model: str
    seed: int
    status: str
    run_id: str | None = None
    stop_reason: str | None = None
    answer: Any = None
    scores: dict[str, float | None] = field(default_factory=dict)
    error: str | None = None


@dataclass
class BatchResult:
    """The outcomes of one :meth:`Runner.run`."""

    outcomes: list[Outcome]

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    def frame(self):
        """Outcomes as a DataFrame, one row per combination, scores as ``score.<name>`` columns."""
        import pandas as pd

        rows = [{**{k: v for k, v in o.__dict__.items() if k != "scores"},
                 **{f"score.{k}": v for k, v in o.scores.items()}} for o in self.outcomes]
        return pd.DataFrame(rows)


def build_agent(loop: LoopSpec, model: ChatModel, task: Task, *, budgets: Budgets | None = None,
                sampling: Sampling | None = None, model_loader: ModelLoader | None = None) -> Agent:
    """The agent a loop spec describes, for one task and model.

    Limits come from the task's budgets overridden by the experiment's ``budgets``; a DERA dialog gets
    at most 3 rounds unless ``budgets.steps`` or the option ``rounds`` says otherwise.

    Raises:
        ExperimentError: Unknown loop options.
        ToolError: A tool named by the task or the options does not exist.
    """
    from lab.experiment import ExperimentError

    opts = dict(loop.options)
    over = (budgets or Budgets()).model_dump()
    sampling = sampling or Sampling()
    try:
        if loop.loop == "dera":
            rounds = over.get("steps") or opts.pop("rounds", 3)
            limits = Limits.from_budgets({**task.budgets.model_dump(), "steps": None}, **{**over, "steps": rounds})
            researcher = opts.pop("researcher_model", None)
            load = model_loader or _load_model
            return DeraAgent(model, load(researcher) if researcher else None, limits=limits, sampling=sampling,
                             **opts)
        limits = Limits.from_budgets(task.budgets, **over)
        extra = get_tools(list(task.tools) + list(opts.pop("tools", [])))
        if loop.loop == "react":
            return ReActAgent(model, extra, limits=limits, sampling=sampling, **opts)
        return RepoSetupAgent(model, [t for t in extra if t.name not in ("shell", "python", "edit_file")],
                              limits=limits, sampling=sampling, **opts)
    except TypeError as e:
        raise ExperimentError(f"loop {loop.name!r}: bad options {sorted(loop.options)}: {e}") from None


def _load_model(name: str) -> ChatModel:
    from lab.models import load_model

    return load_model(name)


def _sampling(exp: Experiment, seed: int) -> Sampling:
    s = exp.sampling
    return Sampling(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, seed=seed)


class Runner:
    """Runs experiments into a trace store.

    Args:
        store: Where runs are recorded (checkpoints go beside it).
        concurrency: Combinations at once (default: the experiment's ``concurrency``).
        progress: Show a progress bar (terminal or notebook).
        model_loader: Turns a model name into a model (default :func:`lab.models.load_model`).
        sandbox_opener: Opens a task's sandbox for a run (default :func:`open_task_sandbox`).
        approver: Decides tool-call approvals for loops that ask (a batch cannot wait for a person).
        executor: Where runs execute (default :class:`lab.executors.LocalExecutor`, threads here; or
            :class:`lab.executors.RayExecutor`, a Ray cluster).
    """

    def __init__(self, store: TraceStore, *, concurrency: int | None = None, progress: bool = True,
                 model_loader: ModelLoader | None = None, sandbox_opener: SandboxOpener | None = None,
                 approver: Callable[[dict[str, Any]], Any] | None = None, executor: Executor | None = None) -> None:
        self.store = store
        self.executor = executor or LocalExecutor()
        self.concurrency = concurrency
        self.progress = progress
        self.model_loader = model_loader or _load_model
        self.sandbox_opener = sandbox_opener
        self.approver = approver
        self._active: dict[str, AgentRun] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    # -- the batch -------------------------------------------------------------------------------

    def run(self, experiment: Experiment) -> BatchResult:
        """Run every combination not done yet; return all outcomes (done ones as ``skipped``).

        Ctrl-C pauses the running combinations at their next step (recorded as ``interrupted``, resumable
        by running the experiment again) and re-raises.
        """
        from tqdm.auto import tqdm

        combos = experiment.combos()
        previous = self._previous(experiment)
        outcomes: dict[int, Outcome] = {}
        todo = []
        for i, c in enumerate(combos):
            key = c.key(experiment)
            prev = previous.get(key, [])
            done = next((r for r in prev if r["status"] == RunStatus.DONE.value), None)
            if done is not None:
                outcomes[i] = self._outcome(c, key, "skipped", done["run_id"])
                outcomes[i].scores = self._scores(done["run_id"])
            else:
                resumable = next((r for r in reversed(prev) if r["status"] == RunStatus.INTERRUPTED.value
                                  and self._has_checkpoint(r["run_id"])), None)
                todo.append((i, c, key, resumable["run_id"] if resumable else None))
        workers = self.concurrency or experiment.concurrency
        bar = tqdm(total=len(combos), initial=len(outcomes), desc=experiment.name, unit="run",
                   disable=not self.progress)
        self._stopping.clear()
        pool = self.executor.start(self, experiment, workers)
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
        return BatchResult([outcomes[i] for i in sorted(outcomes)])

    def stop(self) -> None:
        """Ask the running combinations to pause at their next step (they end ``interrupted``, resumable) and
        the ones not started yet not to start."""
        self._stopping.set()
        with self._lock:
            for run in self._active.values():
                run.pause()

    def _has_checkpoint(self, run_id: str) -> bool:
        """Whether an interrupted run got far enough to resume (one stopped before that starts over)."""
        saver = getattr(self.store, "checkpointer", None) or checkpointer_for(self.store.path)
        return saver.get_tuple({"configurable": {"thread_id": run_id, "checkpoint_ns": ""}}) is not None

    def _previous(self, experiment: Experiment) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for r in self.store.list_runs(batch_id=experiment.batch_id):
            key = r["config"].get("combo")
            if key and r["parent_run_id"] is None:
                found.setdefault(key, []).append(r)
        return found

    # -- one combination ---------------------------------------------------------------------------

    def _outcome(self, c: Combo, key: str, status: str, run_id: str | None = None, **kw: Any) -> Outcome:
        return Outcome(key, c.task.key, c.loop.name, c.model, c.seed, status, run_id, **kw)

    def run_one(self, exp: Experiment, c: Combo, key: str, resume_id: str | None) -> Outcome:
        """Run (or, given ``resume_id``, resume) one combination and score it; every executor calls this."""
        from lab.tasks import unavailable_reason

        if self._stopping.is_set():
            return self._outcome(c, key, "interrupted")
        reason = unavailable_reason(c.task)
        if reason:
            return self._outcome(c, key, "unavailable", error=reason)
        sandbox = None
        run: AgentRun | None = None
        try:
            model = self.model_loader(c.model)
            agent = build_agent(c.loop, model, c.task, budgets=exp.budgets, sampling=_sampling(exp, c.seed),
                                model_loader=self.model_loader)
            opener = self.sandbox_opener or (lambda t, rec: open_task_sandbox(t, rec, backend=exp.sandbox_backend))
            if resume_id is not None:
                run = AgentRun.attach(self.store, resume_id, agent, approver=self.approver)
                if c.task.sandbox is not None:
                    run.sandbox = sandbox = opener(c.task, run.recorder)
                    snaps = run.state.get("snapshots") or {}
                    if snaps:
                        from lab.sandbox import SandboxError, SnapshotRef

                        try:
                            sandbox.restore(SnapshotRef(**snaps[max(snaps, key=int)]))
                        except SandboxError as e:  # removed with the process that took it: start over
                            run.recorder.error(e, where="runner: resume")
                            run.recorder.finish(RunStatus.INTERRUPTED, error="cannot resume: its sandbox snapshot "
                                                f"is gone ({e}); the combination started over as a new run")
                            sandbox.close()
                            sandbox = None
                            return self.run_one(exp, c, key, None)
                with self._lock:
                    self._active[key] = run
                result = run.resume()
            else:
                factory = (lambda rec: opener(c.task, rec)) if c.task.sandbox is not None else None
                run = agent.start(self.store, c.task.instructions, inputs=c.task.inputs, sandbox=factory,
                                  task=c.task, seed=c.seed, batch_id=exp.batch_id, approver=self.approver,
                                  config={"combo": c.key(exp), "experiment": exp.name, "loop_label": c.loop.name})
                sandbox = run.sandbox
                with self._lock:
                    self._active[key] = run
                result = run.run()
            scores = self._score(exp, c, run, result, sandbox) if result.status == RunStatus.DONE.value else {}
            return self._outcome(c, key, result.status, run.run_id, stop_reason=result.stop_reason,
                                 answer=result.answer, scores=scores, error=result.error)
        except Exception as e:  # noqa: BLE001 - one combination failing never stops the batch
            run_id = run.run_id if run is not None else self._last_run(exp, key)
            if run is not None and not run.recorder.finished:
                run.recorder.error(e, where="runner")
                run.recorder.finish(RunStatus.FAILED, error=f"{type(e).__name__}: {e}")
            return self._outcome(c, key, "failed", run_id, error=f"{type(e).__name__}: {e}")
        finally:
            with self._lock:
                self._active.pop(key, None)
            if sandbox is not None:
                sandbox.close()

    def _last_run(self, exp: Experiment, key: str) -> str | None:
        runs = self._previous(exp).get(key)
        return runs[-1]["run_id"] if runs else None

    def _score(self, exp: Experiment, c: Combo, run: AgentRun, result: RunResult, sandbox: Any) -> dict[str, float | None]:
        from lab.scoring import as_scores, get_scorer
        from lab.scoring.runs import score_run

        task = c.task
        scores = []
        try:
            if exp.task_scoring:
                scores += score_run(task, result.answer, store=self.store, run_id=run.run_id, sandbox=sandbox,
                                    use_fallback=exp.judge_fallback)
            target = task.scoring.target if task.scoring.target is not None else task.answer
            for ref in exp.scorers:
                scores += as_scores(get_scorer(ref.scorer, **ref.args)(
                    result.answer, target, item_id=task.key, sandbox=sandbox,
                    question=task.inputs.get("question", task.instructions)))
        except Exception as e:  # noqa: BLE001 - a scorer failing is recorded; the run stays done
            run.recorder.error(e, where="scoring")
        elapsed = self.store.get_run(run.run_id)["elapsed"] or 0.0
        out = {}
        for s in scores:
            s.item_id = s.item_id or task.key
            self.store.add_score(run.run_id, s, elapsed=elapsed)
            out[s.scorer if s.dimension == "overall" else f"{s.scorer}.{s.dimension}"] = s.value
        return out

    def _scores(self, run_id: str) -> dict[str, float | None]:
        rows = self.store.query("SELECT scorer, dimension, value FROM scores WHERE run_id=? AND final=1 ORDER BY seq",
                                (run_id,))
        return {(s if d == "overall" else f"{s}.{d}"): v for s, d, v in rows}
