"""One run of an experiment's combination, wherever it executes: the :class:`RunContext` a run needs, the
:class:`Outcome` it ends with, and :func:`run_combo`, which runs (or resumes) one combination and scores it.

The runner (:mod:`lab.runner`) decides what to run and shows progress; executors (:mod:`lab.executors`)
decide where: each submits ``run_combo(context, combo, key, resume_id)`` to threads here or to a Ray
cluster. Both sit above this module, which imports neither.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lab.traces.schema as schema
from lab.agents.run import LOOPS, Agent, AgentRun, Approver, ModelLoader, RunResult
from lab.experiment import Combo, Experiment, ExperimentError, LoopSpec
from lab.limits import Limits
from lab.models.base import ChatModel, Sampling
from lab.sandbox.base import Sandbox, SandboxError
from lab.tasks.model import Task
from lab.traces.protocol import Store
from lab.traces.recorder import RunRecorder
from lab.traces.rows import RunRow
from lab.traces.schema import Event, RunStatus

SandboxOpener = Callable[[Task, RunRecorder], Sandbox]
"""Opens a task's sandbox for a run (its recorder records the sandbox's events)."""


@dataclass
class Outcome:
    """What happened to one combination.

    Attributes:
        key: The combination's stable key.
        task: Task key.
        loop: Loop label.
        model: Model name.
        seed: Seed.
        status: ``done``, ``failed``, ``interrupted``, ``awaiting_approval``, ``skipped`` (done before),
            ``owned`` (another live runner is running it; ``error`` names it) or ``unavailable`` (cannot run on
            this machine; ``error`` says why).
        run_id: The run (``None`` when none was made).
        stop_reason: Why the run stopped.
        answer: The final answer.
        scores: Final scores by scorer name.
        error: The error, for failed or unavailable combinations, or a scorer's for a ``done`` one.
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

    @classmethod
    def of(cls, combo: Combo, key: str, status: str, run_id: str | None = None, **fields: Any) -> Outcome:
        """The outcome of ``combo`` (under ``key``) with ``status``."""
        return cls(key, combo.task.key, combo.loop.name, combo.model, combo.seed, status, run_id, **fields)

    @property
    def errored(self) -> bool:
        """Whether the combination failed, or finished with a scorer that raised."""
        return self.status == RunStatus.FAILED.value or (self.status == RunStatus.DONE.value and bool(self.error))


class StopSignal:
    """Asks a batch's runs to stop: the ones not started do not start, the running ones pause at their next
    step (they end ``interrupted``, resumable). Pickles as a fresh, unset signal (each process has its own)."""

    def __init__(self) -> None:
        self._set = threading.Event()
        self._lock = threading.Lock()
        self._active: dict[str, AgentRun] = {}

    def set(self) -> None:
        """Stop: pause every running run."""
        self._set.set()
        with self._lock:
            for run in self._active.values():
                run.pause()

    def clear(self) -> None:
        """Reset the signal (runs tracked later run on)."""
        self._set.clear()

    def is_set(self) -> bool:
        """Whether the batch was asked to stop."""
        return self._set.is_set()

    def track(self, key: str, run: AgentRun) -> None:
        """Follow a running run (paused when the signal is set)."""
        with self._lock:
            self._active[key] = run

    def untrack(self, key: str) -> None:
        """Stop following a run (it ended)."""
        with self._lock:
            self._active.pop(key, None)

    def __reduce__(self) -> tuple[type[StopSignal], tuple[()]]:
        return (StopSignal, ())


@dataclass
class RunContext:
    """What every run of a batch needs besides its combination (picklable, for executors elsewhere).

    Attributes:
        experiment: The experiment.
        store: Where runs are recorded (a local store, a cluster worker's stand-in for the driver's SQLite
            store, or a PostgreSQL store, which a worker reopens itself).
        model_loader: Turns a model name into a model.
        sandbox_opener: Opens a task's sandbox (default: :func:`lab.tasks.environment.open_task_sandbox` with
            the experiment's backend).
        approver: Decides tool-call approvals for loops that ask (a batch cannot wait for a person).
        stop: Set to stop the batch's runs.
        wait: When another live runner owns a combination, wait for it to let go (then skip it if it finished,
            resume it if not) instead of skipping it at once.
    """

    experiment: Experiment
    store: Store
    model_loader: ModelLoader
    sandbox_opener: SandboxOpener | None = None
    approver: Approver | None = None
    stop: StopSignal = field(default_factory=StopSignal)
    wait: bool = False

    def open_sandbox(self, task: Task, recorder: RunRecorder) -> Sandbox:
        """The task's sandbox for a run."""
        if self.sandbox_opener is not None:
            return self.sandbox_opener(task, recorder)
        from lab.tasks.environment import open_task_sandbox

        return open_task_sandbox(task, recorder, backend=self.experiment.sandbox_backend)


def build_agent(loop: LoopSpec, model: ChatModel, task: Task, *, budgets: Limits | None = None,
                sampling: Sampling | None = None, model_loader: ModelLoader | None = None) -> Agent:
    """The agent a loop spec describes, for one task and model (the loop registered under the spec's name
    builds itself from its options, see :meth:`lab.agents.run.Agent.from_options`).

    Raises:
        ExperimentError: Unknown loop, or options the loop does not take.
        ToolError: A tool named by the task or the options does not exist.
    """
    cls = LOOPS.get(loop.loop) if loop.loop in LOOPS else None
    if cls is None:
        raise ExperimentError(f"unknown loop {loop.loop!r}; known: {', '.join(LOOPS.names())}")
    try:
        return cls.from_options(model, task, loop.options, budgets=budgets, sampling=sampling or Sampling(),
                                model_loader=model_loader)
    except TypeError as e:
        raise ExperimentError(f"loop {loop.name!r}: bad options {sorted(loop.options)}: {e}") from None


def sampling_for(experiment: Experiment, seed: int) -> Sampling:
    """The sampling of one seed's runs."""
    s = experiment.sampling
    return Sampling(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, seed=seed)


def previous_runs(store: Store, experiment: Experiment) -> dict[str, list[RunRow]]:
    """The batch's earlier top-level runs (forks left out) by combination key, oldest first."""
    found: dict[str, list[RunRow]] = {}
    for r in store.list_runs(batch_id=experiment.batch_id):
        key = r["config"].get("combo")
        if key and r["parent_run_id"] is None:
            found.setdefault(key, []).append(r)
    return found


def has_checkpoint(store: Store, run_id: str) -> bool:
    """Whether an interrupted run got far enough to resume (one stopped before that starts over)."""
    from lab.traces.checkpoints import checkpointer_for

    saver = getattr(store, "checkpointer", None) or checkpointer_for(store.path)
    return saver.get_tuple({"configurable": {"thread_id": run_id, "checkpoint_ns": ""}}) is not None


def run_combo(ctx: RunContext, combo: Combo, key: str, resume_id: str | None = None) -> Outcome:
    """Run one combination and score it, as its one live owner; every executor calls this.

    The combination's lease (:class:`lab.leases.Lease`) is taken first: when another live runner holds it the
    outcome is ``owned`` (or, with ``ctx.wait``, this waits for it). Holding it, the store decides what to do:
    a ``done`` run is ``skipped``, a run its dead owner left is resumed from its last checkpoint (``resume_id``,
    when given, is resumed instead), else a new run starts. A failure of the run is recorded in it and returned
    as a ``failed`` outcome, never raised.
    """
    from lab.leases import Lease

    exp, store = ctx.experiment, ctx.store
    if ctx.stop.is_set():
        return Outcome.of(combo, key, "interrupted")
    lease = Lease(store, lease_key(exp, key))
    if not lease.take():
        if not ctx.wait:
            return Outcome.of(combo, key, "owned", error=f"running in another process ({lease.holder})")
        if not lease.wait(ctx.stop.is_set):
            return Outcome.of(combo, key, "interrupted")
    try:
        prev = previous_runs(store, exp).get(key, [])
        done = next((r for r in prev if r["status"] == RunStatus.DONE.value), None)
        if done is not None:
            return Outcome.of(combo, key, "skipped", done["run_id"], scores=store.final_scores(done["run_id"]))
        if any(r["status"] == RunStatus.RUNNING.value for r in prev):  # its owner let the lease go: it died
            abandon_run(store, exp, key, "the process running it stopped")
            prev = previous_runs(store, exp).get(key, [])
        if resume_id is None:
            resumable = next((r for r in reversed(prev) if r["status"] == RunStatus.INTERRUPTED.value
                              and has_checkpoint(store, r["run_id"])), None)
            resume_id = resumable["run_id"] if resumable else None
        return _run_owned(ctx, combo, key, resume_id, lease)
    finally:
        lease.release()


def _run_owned(ctx: RunContext, combo: Combo, key: str, resume_id: str | None, lease: Any) -> Outcome:
    """Run (or resume) one combination whose lease this process holds, and score it."""
    from lab.tasks import unavailable_reason

    exp, store = ctx.experiment, ctx.store
    reason = unavailable_reason(combo.task)
    if reason:
        return Outcome.of(combo, key, "unavailable", error=reason)
    sandbox = None
    run: AgentRun | None = None
    try:
        model = ctx.model_loader(combo.model)
        agent = build_agent(combo.loop, model, combo.task, budgets=exp.budgets,
                            sampling=sampling_for(exp, combo.seed), model_loader=ctx.model_loader)
        if resume_id is not None:
            run = AgentRun.attach(store, resume_id, agent, approver=ctx.approver)
            if combo.task.sandbox is not None:
                sandbox = ctx.open_sandbox(combo.task, run.recorder)
                try:
                    run.use_sandbox(sandbox)
                except SandboxError as e:  # its snapshot and archive are gone (the snapshot cap): start over
                    run.recorder.error(e, where="runner: resume")
                    run.recorder.finish(RunStatus.INTERRUPTED, error="cannot resume: its sandbox snapshot "
                                        f"is gone ({e}); the combination started over as a new run")
                    sandbox.close()
                    sandbox = None
                    return _run_owned(ctx, combo, key, None, lease)
            lease.on_lost = run.pause
            ctx.stop.track(key, run)
            result = run.resume()
        else:
            task = combo.task
            opener = (lambda rec: ctx.open_sandbox(task, rec)) if task.sandbox is not None else None
            run = agent.start(store, task.instructions, inputs=task.inputs, sandbox=opener, task=task,
                              seed=combo.seed, batch_id=exp.batch_id, approver=ctx.approver,
                              config={"combo": key, "experiment": exp.name, "loop_label": combo.loop.name})
            sandbox = run.sandbox
            lease.on_lost = run.pause
            ctx.stop.track(key, run)
            result = run.run()
        scores, error = (score_run(ctx, combo, run, result, sandbox) if result.status == RunStatus.DONE.value
                         else ({}, None))
        return Outcome.of(combo, key, result.status, run.run_id, stop_reason=result.stop_reason,
                          answer=result.answer, scores=scores, error=result.error or error)
    except Exception as e:  # noqa: BLE001 - one combination failing never stops the batch
        runs = previous_runs(store, exp).get(key)
        run_id = run.run_id if run is not None else (runs[-1]["run_id"] if runs else None)
        if run is not None and not run.recorder.finished:
            run.recorder.error(e, where="runner")
            run.recorder.finish(RunStatus.FAILED, error=f"{type(e).__name__}: {e}")
        return Outcome.of(combo, key, "failed", run_id, error=f"{type(e).__name__}: {e}")
    finally:
        lease.on_lost = None
        ctx.stop.untrack(key)
        if sandbox is not None:
            sandbox.close()


def score_run(ctx: RunContext, combo: Combo, run: AgentRun, result: RunResult,
              sandbox: Sandbox | None) -> tuple[dict[str, float | None], str | None]:
    """Score a finished run with its task's scoring and the experiment's scorers; record the scores.

    Returns:
        The final scores by name, and the error of a scorer that raised (recorded in the run; the run stays
        ``done``).
    """
    from lab.scoring import as_scores, get_scorer
    from lab.scoring.runs import score_run as task_scores
    from lab.tasks.scoring import scorer_context

    exp, store, task = ctx.experiment, ctx.store, combo.task
    scores = []
    error = None
    try:
        if exp.task_scoring:  # the one pipeline every run kind, human or agent, is scored by
            scores += task_scores(task, result.answer, store=store, run_id=run.run_id, sandbox=sandbox,
                                  use_fallback=exp.judge_fallback)
        target = task.scoring.target if task.scoring.target is not None else task.answer
        for ref in exp.scorers:
            scores += as_scores(get_scorer(ref.scorer, **ref.args)(result.answer, target,
                                                                    **scorer_context(task, sandbox)))
    except Exception as e:  # noqa: BLE001 - a scorer failing is recorded; the run stays done
        run.recorder.error(e, where="scoring")
        error = f"scoring: {type(e).__name__}: {e}"
    elapsed = store.get_run(run.run_id)["elapsed"] or 0.0
    out = {}
    for s in scores:
        s.item_id = s.item_id or task.key
        store.add_score(run.run_id, s, elapsed=elapsed)
        out[s.scorer if s.dimension == "overall" else f"{s.scorer}.{s.dimension}"] = s.value
    return out, error


def lease_key(experiment: Experiment, key: str) -> str:
    """The lease a combination's runner holds while it runs (one live owner per combination)."""
    return f"{experiment.batch_id}/{key}"


def abandon_run(store: Store, experiment: Experiment, key: str, reason: str,
                status: RunStatus = RunStatus.INTERRUPTED) -> str | None:
    """Finish a combination's run that is still marked running (its executor lost it): its lease dropped, an
    error event with ``reason``, then ``status``.

    Returns:
        The run's id (``None`` when no run of the combination was running).
    """
    store.release_lease(lease_key(experiment, key), None)  # its holder is gone with the executor's worker
    for run in store.list_runs(batch_id=experiment.batch_id, status=RunStatus.RUNNING.value):
        if run["config"].get("combo") == key and run["parent_run_id"] is None:
            rid = run["run_id"]
            elapsed = store.last_elapsed(rid)
            store.append(Event(rid, *schema.error(message=reason, where="executor"), ts=time.time(), elapsed=elapsed))
            store.finish_run(rid, status.value, error=reason, elapsed=elapsed)
            return rid
    return None
