"""Running a loop: one LangGraph thread per run, recorded, checkpointed, pausable, resumable, forkable.

An :class:`Agent` describes a loop (its graph, its state, its models); :meth:`Agent.start` creates an
:class:`AgentRun` — a run in the trace store plus a LangGraph thread with the same id in the SQLite
checkpointer. :meth:`AgentRun.run` drives it until it finishes, is paused, stops on a fault, or waits
for a person to approve a tool call.

How a run ends (``RunResult.status`` / the run's status in the store):

- ``done``: the agent answered, or a limit was hit (``stop_reason`` says which, e.g. ``limit:steps``);
- ``interrupted``: paused (``pause()``) or Ctrl-C; :meth:`AgentRun.resume` continues from the last
  checkpoint, also in a new process (:meth:`AgentRun.attach`);
- ``failed``: the sandbox died, the model failed for good, or the loop hit a bug (the error is recorded);
- ``awaiting_approval`` (not a stored status; the run stays ``running``): a tool call waits for
  :meth:`AgentRun.approve`, :meth:`AgentRun.edit` or :meth:`AgentRun.reject`.

Every event recorded before a stop is kept.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, TypeGuard

from langgraph.graph import StateGraph
from langgraph.types import Command

from lab.agents.limits import Limits, record_limit
from lab.errors import LabError
from lab.models.base import ChatModel, ChatResponse, Message, Sampling
from lab.provenance import record_sandbox
from lab.registry import Registry
from lab.sandbox.base import SandboxError, SandboxUnavailable, SnapshotRef
from lab.sandbox.snapshot_store import SnapshotStore
from lab.traces.checkpoints import checkpointer_for
from lab.traces.protocol import Store
from lab.traces.recorder import RunRecorder
from lab.traces.schema import RunStatus, agent_message, sandbox_exec

if TYPE_CHECKING:
    from langchain_core.runnables import RunnableConfig

    from lab.sandbox.base import Sandbox
    from lab.tasks.model import Task

AWAITING_APPROVAL = "awaiting_approval"

Approver = Callable[[dict[str, Any]], Any]
"""Decides on a tool call awaiting approval: gets ``{"tool", "arguments", "id", "step"}`` and returns
``"approve"``, ``{"action": "edit", "arguments": {...}}`` or ``{"action": "reject", "reason": "..."}``."""


RunSandboxOpener = Callable[[RunRecorder], "Sandbox"]
"""Opens a run's sandbox given the run's recorder (so the sandbox's execs are recorded in the run)."""


class AgentError(LabError):
    """An agent run cannot be started, resumed or forked as asked (the message says why)."""


class _Paused(Exception):
    """Raised at a step boundary when a pause was requested (never escapes :class:`AgentRun`)."""


@dataclass
class RunResult:
    """How a run ended (or where it stands).

    Attributes:
        run_id: The run.
        status: ``done``, ``failed``, ``interrupted`` or ``awaiting_approval``.
        answer: The final answer (``None`` when there is none).
        stop_reason: Why it stopped: ``submitted``, ``final``, ``limit:<name>``, ``invalid_replies``,
            ``paused``, ``keyboard_interrupt``, ``sandbox_unavailable``, ``error``.
        steps: Steps taken.
        tokens: Model tokens used.
        error: The error message for failed runs.
        pending: Tool calls awaiting approval.
    """

    run_id: str
    status: str
    answer: Any = None
    stop_reason: str | None = None
    steps: int = 0
    tokens: int = 0
    error: str | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)


class LoopState(TypedDict, total=False):
    """The state keys every loop holds; each loop's state adds its own."""

    step: int
    tokens: int
    done: bool
    stop_reason: str | None
    answer: Any
    invalid: int
    snapshots: dict[str, dict[str, str]]
    spans: dict[str, str]


ModelLoader = Callable[[str], ChatModel]
"""Turns a model name into a model (:func:`lab.models.load_model` by default)."""

LOOPS: Registry[type[Agent]] = Registry("loop", modules=("lab.agents",))
"""Agent loops by name (``dera``, ``react``, ``repo_setup``; every module of ``lab.agents`` may add one)."""


class Agent:
    """Base of the loops: a LangGraph graph over a small, JSON-only state.

    Subclasses set ``name`` and ``entry`` (the node that begins a step), and implement :meth:`from_options`,
    :meth:`initial_state`, :meth:`build` and :meth:`describe`; ``@LOOPS.register(name)`` makes a loop
    available to experiments, the runner and the launcher by name. The state extends :class:`LoopState`:
    ``step``, ``tokens``, ``done``, ``stop_reason``, ``answer``, ``invalid`` (consecutive invalid replies),
    ``snapshots`` (sandbox snapshot per step) and ``spans`` (span ids of roles).
    """

    name: str = "agent"
    entry: str = "agent"
    limits: Limits = Limits()
    snapshot_steps: bool = False

    @classmethod
    def from_options(cls, model: ChatModel, task: Task, options: dict[str, Any], *, budgets: Limits | None = None,
                     sampling: Sampling | None = None, model_loader: ModelLoader | None = None) -> Agent:
        """The loop for one task and model, built from an experiment's loop ``options``.

        Args:
            model: The model (the main role's, for loops with several).
            task: The task; its budgets and tools apply.
            options: The loop's options as an experiment file gives them.
            budgets: Limits overriding the task's (the experiment's ``budgets``).
            sampling: Sampling for every model call.
            model_loader: Turns model names in ``options`` into models.

        Raises:
            TypeError: An option the loop does not take.
            ToolError: A tool named by the task or the options does not exist.
        """
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The loop's settings as JSON (stored as the run's config; enough to rebuild the agent)."""
        raise NotImplementedError

    def model_name(self) -> str:
        """The model name recorded on the run (roles with different models: ``a+b``)."""
        raise NotImplementedError

    def models(self) -> list[ChatModel]:
        """The loop's models (each role's; recorded in the run's provenance)."""
        return [v for v in vars(self).values() if callable(getattr(v, "chat", None))]

    def provenance(self, *, task: Task | None = None, sandbox: Sandbox | None = None,
                   seed: int | None = None) -> dict[str, Any]:
        """The provenance recorded on a run of this loop (:func:`lab.provenance.collect`)."""
        from lab.provenance import collect

        sampling = copy.copy(getattr(self, "sampling", None))
        if sampling is not None and getattr(sampling, "seed", None) is None and seed is not None:
            sampling.seed = seed
        return collect(models=self.models(), task=task, sandbox=sandbox, seed=seed, sampling=sampling)

    def initial_state(self, prompt: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """The loop-specific part of the starting state for a task's ``prompt`` and ``inputs``."""
        raise NotImplementedError

    def build(self, graph: StateGraph, run: AgentRun) -> None:
        """Add nodes and edges to ``graph``; nodes use ``run`` for models, sandbox, tools and recording."""
        raise NotImplementedError

    def state_schema(self) -> type:
        """The TypedDict of the loop's state."""
        raise NotImplementedError

    def start(self, store: Store, prompt: str, *, inputs: dict[str, Any] | None = None,
              sandbox: Sandbox | RunSandboxOpener | None = None, task: str | Task | None = None,
              seed: int | None = None,
              batch_id: str | None = None, approver: Approver | None = None,
              config: dict[str, Any] | None = None) -> AgentRun:
        """Create a run in ``store`` (``run_started`` recorded) ready to :meth:`AgentRun.run`.

        Args:
            store: The trace store.
            prompt: What the task asks (the question, the instructions).
            inputs: Structured task inputs (options, the conversation to summarise ...).
            sandbox: The run's sandbox, or a function of the run's recorder that opens one (so its
                execs are recorded in this run).
            task: The task: its key (recorded on the run), or the :class:`lab.tasks.Task` itself (tools
                that need it, like ``score``, use it; given a key they look it up by key).
            seed: Seed recorded on the run and passed to the model.
            batch_id: Batch (experiment) the run belongs to.
            approver: Decides on tool calls awaiting approval (else the run waits for a person).
            config: Extra fields stored in the run's config (experiment, scorers ...).
        """
        task_obj = None if task is None or isinstance(task, str) else task
        task_key = task_obj.key if task_obj is not None else task
        cfg = {**(config or {}), "task": task_key, "agent": self.name, "model": self.model_name(), "seed": seed,
               "prompt": prompt, "inputs": inputs or {}, "loop": self.describe()}
        box = sandbox if is_sandbox(sandbox) else None
        opener = sandbox if box is None and callable(sandbox) else None
        prov = self.provenance(task=task_obj, sandbox=box, seed=seed)
        rec = RunRecorder.start(store, cfg, batch_id=batch_id, provenance=prov)
        if opener is not None:
            try:
                box = opener(rec)
            except BaseException as e:
                rec.error(e, where="sandbox")
                rec.finish(RunStatus.FAILED, error=f"the sandbox could not start: {e}",
                           stop_reason="sandbox_unavailable")
                raise
            record_sandbox(rec, box)
        run = AgentRun(self, store, rec, sandbox=box, approver=approver, seed=seed, task=task_obj)
        run._input = {**_common_state(), **self.initial_state(prompt, inputs or {})}
        return run


def is_sandbox(obj: object) -> TypeGuard[Sandbox]:
    """Whether ``obj`` (not ``None``) is a sandbox rather than a function of a run's recorder that opens one: it is
    not callable, or it has an ``exec`` method (a stand-in may implement only what its run uses)."""
    return obj is not None and (not callable(obj) or hasattr(obj, "exec"))


def restore_snapshot(sandbox: Sandbox, snapshots: dict[str, dict[str, str]], step: int | None = None,
                     archives: SnapshotStore | None = None) -> bool:
    """Restore into ``sandbox`` the snapshot a loop's state took at ``step`` (default: its latest one): the
    backend's own snapshot while it exists, else the step's workdir archive from ``archives``.

    Returns:
        Whether there was a snapshot to restore.

    Raises:
        SandboxError: The snapshot is gone, and so is its archive.
    """
    key = str(step) if step is not None else max(snapshots, key=int, default=None)
    snap = snapshots.get(key) if key is not None else None
    if not snap:
        return False
    try:
        sandbox.restore(SnapshotRef(snap["backend"], snap["ref"]))
    except SandboxError as e:
        if not snap.get("archive") or archives is None:
            raise
        try:
            archives.restore(sandbox, snap["archive"])
        except SandboxError as e2:
            raise SandboxError(f"{e}; {e2}") from None
    return True


def _common_state() -> dict[str, Any]:
    return {"step": 0, "tokens": 0, "done": False, "stop_reason": None, "answer": None, "invalid": 0,
            "snapshots": {}, "spans": {}}


class AgentRun:
    """One run of an agent: a trace-store run and a LangGraph thread with the same id.

    Args:
        agent: The loop.
        store: The trace store.
        recorder: The run's recorder.
        sandbox: The run's sandbox (``None`` for loops without one).
        approver: Decides tool-call approvals automatically (``None``: wait for a person).
        seed: Passed to the model as ``Sampling.seed``.
        task: The run's :class:`lab.tasks.Task` (default: looked up by the key recorded on the run when
            a tool needs it).
    """

    def __init__(self, agent: Agent, store: Store, recorder: RunRecorder, *, sandbox: Sandbox | None = None,
                 approver: Approver | None = None, seed: int | None = None, task: Task | None = None) -> None:
        self.agent = agent
        self.store = store
        self.recorder = recorder
        self.sandbox = sandbox
        self.approver = approver
        self.seed = seed
        self._task = task
        self.run_id = recorder.run_id
        self.created_at = store.get_run(self.run_id)["created_at"]
        self.thread: RunnableConfig = {"configurable": {"thread_id": self.run_id}, "recursion_limit": 100_000}
        graph: StateGraph[Any] = StateGraph(agent.state_schema())
        agent.build(graph, self)
        # a store may bring its own checkpointer (a cluster worker's stand-in for the driver's store does)
        self.graph = graph.compile(checkpointer=getattr(store, "checkpointer", None) or checkpointer_for(store.path))
        self._input: Any = None  # what the next drive starts from (a state, None to continue, a Command)
        self._pause = threading.Event()
        self.result: RunResult | None = None

    # -- attaching to an existing run ----------------------------------------------------------

    @classmethod
    def attach(cls, store: Store, run_id: str, agent: Agent, *, sandbox: Sandbox | None = None,
               approver: Approver | None = None, restore_sandbox: bool = True) -> AgentRun:
        """Reconnect to a stored run (e.g. after a kernel restart) to :meth:`resume` it.

        Args:
            store: The trace store holding the run.
            run_id: The run.
            agent: The same loop, rebuilt (its models may be new objects).
            sandbox: A sandbox for the rest of the run; with ``restore_sandbox`` the latest step's
                snapshot is restored into it first.
            approver: As for :meth:`Agent.start`.
            restore_sandbox: Restore the latest snapshot into ``sandbox``.

        Raises:
            AgentError: The run has no checkpoint to continue from.
        """
        row = store.get_run(run_id)
        rec = RunRecorder.attach(store, row["run_id"])
        run = cls(agent, store, rec, sandbox=sandbox, approver=approver, seed=row.get("seed"))
        if not run.graph.get_state(run.thread).values:
            raise AgentError(f"run {run_id} has no checkpoint to resume from")
        if sandbox is not None:
            run.use_sandbox(sandbox, restore=restore_sandbox)
        return run

    def use_sandbox(self, sandbox: Sandbox, *, restore: bool = True) -> None:
        """Give the run ``sandbox`` for its remaining steps; with ``restore``, first put back the files as the
        latest step's snapshot has them.

        Raises:
            SandboxError: The snapshot is gone, and its workdir archive too (dropped by the snapshot cap).
        """
        self.sandbox = sandbox
        if restore:
            restore_snapshot(sandbox, self.state.get("snapshots") or {}, archives=self.archives)

    def get_task(self) -> Task | None:
        """The run's :class:`lab.tasks.Task` (``None`` when it has none); looked up by its recorded key
        (``SUITE/ID``) when the run was not given the task itself.

        Raises:
            TaskError: The recorded key names no known task.
        """
        if self._task is None:
            key = self.store.get_run(self.run_id)["task"]
            if key:
                from lab.tasks import get_task

                self._task = get_task(key)
        return self._task

    # -- driving ---------------------------------------------------------------------------------

    @property
    def state(self) -> dict[str, Any]:
        """The run's current graph state (from the latest checkpoint)."""
        return dict(self.graph.get_state(self.thread).values)

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Tool calls waiting for approval."""
        return [i.value for i in self.graph.get_state(self.thread).interrupts]

    def run(self) -> RunResult:
        """Drive the run until it finishes, pauses, fails or waits for an approval."""
        if self.recorder.finished:
            raise AgentError(f"run {self.run_id} is {self.store.get_run(self.run_id)['status']}; "
                             "resume() or fork() it")
        self._pause.clear()
        if isinstance(self._input, dict) and self.sandbox is not None and self.agent.snapshot_steps \
                and str(self._input.get("step", 0)) not in self._input["snapshots"]:
            self._input["snapshots"][str(self._input.get("step", 0))] = self.snapshot()
        inp, self._input = self._input, None
        while True:
            try:
                self.graph.invoke(inp, self.thread, durability="sync")
            except _Paused:
                return self._stop(RunStatus.INTERRUPTED, "paused")
            except KeyboardInterrupt:
                return self._stop(RunStatus.INTERRUPTED, "keyboard_interrupt")
            except SandboxUnavailable as e:
                self.recorder.error(e, where="sandbox")
                return self._stop(RunStatus.FAILED, "sandbox_unavailable", str(e))
            except Exception as e:  # noqa: BLE001 - any other fault ends the run, recorded
                self.recorder.error(e, where="agent")
                return self._stop(RunStatus.FAILED, "error", f"{type(e).__name__}: {e}")
            pending = self.pending
            if not pending:
                break
            if self.approver is None:
                self.recorder.emit(*agent_message(action=AWAITING_APPROVAL, pending=pending), agent=self.agent.name)
                self.result = self._result(AWAITING_APPROVAL, pending=pending)
                return self.result
            inp = Command(resume=self.approver(pending[0]))
        st = self.state
        self.recorder.finish(RunStatus.DONE, stop_reason=st.get("stop_reason"), answer=st.get("answer"),
                             steps=st["step"], tokens=st["tokens"])
        self.result = self._result(RunStatus.DONE.value)
        return self.result

    def _stop(self, status: RunStatus, reason: str, error: str | None = None) -> RunResult:
        self.recorder.finish(status, error=error or reason, stop_reason=reason)
        self.result = self._result(status.value, reason=reason, error=error)
        return self.result

    def _result(self, status: str, *, reason: str | None = None, error: str | None = None,
                pending: list[dict[str, Any]] | None = None) -> RunResult:
        st = self.state
        return RunResult(self.run_id, status, st.get("answer"), reason or st.get("stop_reason"),
                         st.get("step", 0), st.get("tokens", 0), error, pending or [])

    def pause(self) -> None:
        """Ask the run to stop at the next step boundary (safe from another thread); :meth:`resume` continues."""
        self._pause.set()

    def resume(self) -> RunResult:
        """Continue a paused or interrupted run from its last checkpoint (same run id, events appended)."""
        if not self.recorder.finished and self.result is not None and self.result.status == AWAITING_APPROVAL:
            raise AgentError(f"run {self.run_id} waits for an approval: approve(), edit() or reject()")
        self.store.reopen_run(self.run_id)
        self.recorder = RunRecorder.attach(self.store, self.run_id)
        self.recorder.emit(*agent_message(action="resume"), agent=self.agent.name)
        self._input = None
        return self.run()

    # -- approvals -------------------------------------------------------------------------------

    def _decide(self, decision: Any) -> RunResult:
        if not self.pending:
            raise AgentError(f"run {self.run_id} has no tool call awaiting approval")
        if self.result is None or self.store.get_run(self.run_id)["status"] != RunStatus.RUNNING.value:
            self.store.reopen_run(self.run_id)  # answered from another process (e.g. `lab approve`)
            self.recorder = RunRecorder.attach(self.store, self.run_id)
        self.recorder.emit(*agent_message(action="approval", decision=decision), agent=self.agent.name)
        self._input = Command(resume=decision)
        return self.run()

    def approve(self) -> RunResult:
        """Approve the pending tool call and continue."""
        return self._decide({"action": "approve"})

    def edit(self, arguments: dict[str, Any]) -> RunResult:
        """Run the pending tool call with these arguments instead, and continue."""
        return self._decide({"action": "edit", "arguments": arguments})

    def reject(self, reason: str = "rejected by the reviewer") -> RunResult:
        """Do not run the pending tool call; the agent observes ``reason`` and continues."""
        return self._decide({"action": "reject", "reason": reason})

    # -- forks -----------------------------------------------------------------------------------

    def steps(self) -> list[int]:
        """Steps this run can be forked from (the state saved when each had completed; 0 is the start)."""
        return sorted({s.values["step"] for s in self._boundaries()})

    def _boundaries(self):
        for snap in self.graph.get_state_history(self.thread):
            if snap.values and (snap.next == (self.agent.entry,) or (not snap.next and snap.values.get("done"))):
                yield snap

    def _boundary_at(self, step: int) -> Any:
        for snap in self._boundaries():  # newest first: the latest state saved at that step
            if snap.values.get("step") == step:
                return snap
        raise AgentError(f"run {self.run_id} has no saved state at step {step} (saved: {self.steps()})")

    def state_at(self, step: int) -> dict[str, Any]:
        """The graph state when step ``step`` had just completed (0: the start).

        Raises:
            AgentError: The run never reached that step.
        """
        return copy.deepcopy(dict(self._boundary_at(step).values))

    def elapsed_at(self, step: int) -> float:
        """The run's working time when step ``step`` had just completed (its latest event saved by then).

        Raises:
            AgentError: The run never reached that step.
        """
        from datetime import datetime

        saved = datetime.fromisoformat(self._boundary_at(step).created_at).timestamp()
        return self.store.last_elapsed(self.run_id, until=saved)

    def fork(self, step: int, *, agent: Agent | None = None, sandbox: Sandbox | None = None,
             edit: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None,
             tool_result: str | None = None, approver: Approver | None = None) -> AgentRun:
        """A new run continuing this one from step ``step``, with something changed.

        The graph state at that step is copied to a new LangGraph thread, the sandbox snapshot taken at
        that step is restored, and the new run is linked to this one (``parent_run_id``, ``fork_step``).
        Its working clock starts from the parent's working time at that step (:meth:`elapsed_at`).

        Args:
            step: The step to fork from (see :meth:`steps`).
            agent: A different loop configuration (another model, other prompts); default: the same.
            sandbox: The fork's sandbox (default: this run's); the step's snapshot is restored into it.
            edit: Changes the copied state (return the new state, or change it in place).
            tool_result: Replace the last tool observation before the fork point with this text.
            approver: As for :meth:`Agent.start`.

        Returns:
            The new run, ready to :meth:`run`.

        Raises:
            AgentError: No saved state at ``step``, nothing to replace with ``tool_result``, or the run took
                sandbox snapshots and no open sandbox is there to restore them into (nothing is recorded).
            SandboxError: Step ``step``'s snapshot and its workdir archive are gone (nothing is recorded).
        """
        state, elapsed = self.state_at(step), self.elapsed_at(step)
        snapshots = {k: v for k, v in (state.get("snapshots") or {}).items() if int(k) <= step}
        sandbox = sandbox if sandbox is not None else self.sandbox
        if snapshots and (sandbox is None or getattr(sandbox, "closed", False)):
            raise AgentError(f"cannot fork run {self.run_id} at step {step}: it has sandbox snapshots and "
                             f"{'its sandbox is closed' if sandbox is not None else 'no sandbox was given'}; pass "
                             f"sandbox= (a new one of the task's image; step {step}'s files are restored into it)")
        if sandbox is not None:  # before anything is recorded: a fork that cannot restore is no run
            restore_snapshot(sandbox, snapshots, step if str(step) in snapshots else None, archives=self.archives)
        agent = agent or self.agent
        if tool_result is not None:
            tool_msgs = [m for m in state.get("messages", []) if m.get("role") == "tool"]
            if not tool_msgs:
                raise AgentError(f"run {self.run_id} has no tool result before step {step} to replace")
            tool_msgs[-1]["content"] = tool_result
        if edit is not None:
            state = edit(state) or state
        state["spans"] = {}
        state["done"], state["stop_reason"] = False, None
        parent = self.store.get_run(self.run_id)
        cfg = {**parent["config"], "agent": agent.name, "model": agent.model_name(), "loop": agent.describe(),
               "fork": {"parent_run_id": self.run_id, "step": step}}
        rec = RunRecorder.start(self.store, cfg, parent_run_id=self.run_id, fork_step=step,
                                batch_id=parent["batch_id"], elapsed=elapsed,
                                provenance=agent.provenance(task=self._task, sandbox=sandbox, seed=parent.get("seed")))
        state["snapshots"] = snapshots
        rec.emit(*agent_message(action="fork", fork_parent_run_id=self.run_id, fork_step=step), agent=agent.name)
        run = AgentRun(agent, self.store, rec, sandbox=sandbox, approver=approver, seed=parent.get("seed"),
                       task=self._task)
        run._input = state
        return run

    # -- helpers for the loops' nodes ------------------------------------------------------------

    def boundary(self) -> None:
        """Called at the start of each step: stops here when a pause was asked for."""
        if self._pause.is_set():
            raise _Paused()

    def check_limits(self, state: dict[str, Any], *, agent: str | None = None) -> dict[str, Any] | None:
        """When a limit is reached: record it and return the state update that ends the run."""
        hit = self.agent.limits.exceeded(steps=state["step"], tokens=state["tokens"], created_at=self.created_at,
                                         working_s=self.recorder.clock.elapsed())
        if hit is None:
            return None
        name, limit, used = hit
        record_limit(self.recorder, name, limit, used, agent=agent)
        return {"done": True, "stop_reason": f"limit:{name}"}

    def chat(self, model: ChatModel, messages: list[Message], *, agent: str, sampling: Sampling | None = None,
             **kwargs: Any) -> ChatResponse:
        """Call ``model`` with this run's recorder, seed and ``agent`` name."""
        s = copy.copy(sampling) if sampling is not None else Sampling()
        if s.seed is None and self.seed is not None:
            s.seed = self.seed
        return model.chat(messages, sampling=s, recorder=self.recorder, agent=agent, **kwargs)

    def snapshot(self) -> dict[str, str] | None:
        """Snapshot the sandbox (``None`` without one), as a JSON-able dict for the state."""
        if self.sandbox is None:
            return None
        t0 = time.perf_counter()
        ref = self.sandbox.snapshot()
        digest = self.archives.save(self.sandbox, self.run_id)  # outlives the sandbox and this process
        self.recorder.emit(*sandbox_exec(op="snapshot", snapshot_ref=ref.ref, snapshot_archive=digest,
                                         duration=round(time.perf_counter() - t0, 6)))
        return {"backend": ref.backend, "ref": ref.ref, "archive": digest}

    @property
    def archives(self) -> SnapshotStore:
        """The snapshot store beside this run's trace store (its steps' workdirs, kept after the process)."""
        return SnapshotStore.beside(self.store.path)

    def role_span(self, state: dict[str, Any], role: str) -> tuple[str, dict[str, Any] | None]:
        """The span id of ``role`` (opened on first use); the state update that stores a new one."""
        spans = state.get("spans") or {}
        if role in spans:
            return spans[role], None
        with self.recorder.span(role, agent=role) as span_id:
            pass
        return span_id, {"spans": {**spans, role: span_id}}
