"""Answering a run's pending tool-call approval from outside the process that started it (``lab approve``).

A run that stops for an approval records an ``agent_message`` with ``lab.action: awaiting_approval`` and the
pending calls; :func:`awaiting_approval` finds such runs (``lab runs list`` shows them), and
:func:`answer_approval` rebuilds the run's loop from its recorded settings, attaches to its checkpoint,
answers, and drives the run on in this process until it finishes, stops, or asks again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from lab.agents.limits import Limits
from lab.agents.run import AWAITING_APPROVAL, Agent, AgentError, AgentRun, RunResult
from lab.models.base import ChatModel, Sampling
from lab.traces.schema import ACTION, PENDING, EventKind, RunStatus
from lab.traces.store import TraceStore

if TYPE_CHECKING:
    from lab.sandbox.base import Sandbox

__all__ = ["answer_approval", "answer_pending", "awaiting_approval", "edited_arguments", "rebuild_agent"]

Action = Literal["approve", "edit", "reject"]

_OPEN = (RunStatus.RUNNING.value, RunStatus.INTERRUPTED.value)


def awaiting_approval(store: TraceStore, run_id: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Runs whose latest event asks for an approval (and that are still open): run id → pending calls
    (only ``run_id``'s, when given)."""
    rows = store.latest_events(statuses=_OPEN, kinds=[EventKind.AGENT_MESSAGE.value], run_id=run_id)
    out = {}
    for ev in rows:
        run_id, a = ev.run_id, ev.attrs
        if a.get(ACTION) == AWAITING_APPROVAL:
            out[run_id] = a.get(PENDING) or []
    return out


def rebuild_agent(store: TraceStore, run_id: str, *, model: ChatModel | None = None,
                  model_loader: Callable[[str], ChatModel] | None = None) -> Agent:
    """The ReAct or repo-set-up loop of a stored run, rebuilt from its recorded settings (tools by name,
    system prompt, limits, approvals, sampling) with its model (or ``model``).

    Raises:
        AgentError: The run was not made by one of those loops, or a tool it used is not a named tool.
    """
    from lab.agents.react import ReActAgent
    from lab.agents.repo_setup import RepoSetupAgent
    from lab.tools.registry import get_tools

    run = store.get_run(run_id)
    desc = run["config"].get("loop") or {}
    loop = desc.get("loop") if isinstance(desc, dict) else None
    if loop not in ("react", "repo_setup"):
        raise AgentError(f"run {run['run_id']} was made by {loop or run['agent']!r}; only react and repo_setup "
                         "runs ask for approvals")
    if model is None:
        from lab.models import load_model

        model = (model_loader or load_model)(desc.get("model") or run["model"] or "")
    builtin = {"submit", "shell", "python", "edit_file"} if loop == "repo_setup" else {"submit"}
    try:
        tools = get_tools([n for n in desc.get("tools", []) if n not in builtin])
    except Exception as e:  # noqa: BLE001 - a custom tool object cannot be found by name
        raise AgentError(f"run {run['run_id']}: cannot rebuild its tools: {e}") from None
    approval = desc.get("approval", False)
    kw: dict[str, Any] = dict(system_prompt=desc["system_prompt"], limits=Limits(**desc.get("limits", {})),
                              approval=approval if isinstance(approval, bool) else list(approval),
                              sampling=Sampling(**desc.get("sampling", {})))
    return RepoSetupAgent(model, tools, **kw) if loop == "repo_setup" else ReActAgent(model, tools, **kw)


def answer_approval(store: TraceStore, run_id: str, action: Action, *,
                    arguments: dict[str, Any] | None = None, reason: str | None = None,
                    model: ChatModel | None = None, sandbox: Sandbox | None = None) -> RunResult:
    """Answer a stored run's pending approval and continue it here until it finishes, stops or asks again;
    a run that finishes is scored by its task (:func:`lab.scoring.runs.score_run`) when it has one.

    Args:
        store: The store holding the run.
        run_id: The run.
        action: ``approve``, ``edit`` (run the call with ``arguments``) or ``reject`` (with ``reason``).
        arguments: The edited arguments.
        reason: Why the call was rejected (the agent observes it).
        model: The model to continue with (default: the run's, loaded by name).
        sandbox: A sandbox for the rest of the run (its latest snapshot is restored into it).

    Raises:
        AgentError: The run waits for no approval, or its loop cannot be rebuilt.
    """
    rid = store.get_run(run_id)["run_id"]
    if rid not in awaiting_approval(store):
        raise AgentError(f"run {rid} is not waiting for an approval (status {store.get_run(rid)['status']})")
    run = AgentRun.attach(store, rid, rebuild_agent(store, rid, model=model), sandbox=sandbox)
    if action == "edit":
        result = run.edit(arguments or {})
    elif action == "reject":
        result = run.reject(reason or "rejected by the reviewer")
    else:
        result = run.approve()
    if result.status == RunStatus.DONE.value:
        _score(store, run, result, sandbox)
    return result


def edited_arguments(text: str) -> dict[str, Any]:
    """The arguments of an edited call, from the JSON object a reviewer typed.

    Raises:
        LabError: Not JSON, or not an object (the message says which).
    """
    from lab.errors import LabError

    try:
        arguments = json.loads(text)
    except ValueError as e:
        raise LabError(f"not JSON: {e}") from None
    if not isinstance(arguments, dict):
        raise LabError("give the arguments as a JSON object")
    return arguments


def answer_pending(store: TraceStore, run_id: str, action: Action, *, arguments: dict[str, Any] | None = None,
                   reason: str | None = None, model: ChatModel | None = None,
                   backend: str = "docker") -> RunResult:
    """Answer a stored run's pending approval as :func:`answer_approval` does, first opening its task's
    sandbox (``backend``) when the task has one and closing it when the run stops (``lab approve`` and
    the dashboard's trace view call this).

    Raises:
        AgentError: The run waits for no approval, or its loop cannot be rebuilt.
    """
    rid = store.get_run(run_id)["run_id"]
    if rid not in awaiting_approval(store):
        raise AgentError(f"run {rid} is not waiting for an approval (status {store.get_run(rid)['status']})")
    key = store.get_run(rid)["task"]
    task = None
    if key and "/" in key:
        from lab.tasks import get_task

        task = get_task(key)
    sandbox = None
    if task is not None and task.sandbox is not None:
        from lab.tasks.environment import open_task_sandbox
        from lab.traces import RunRecorder

        sandbox = open_task_sandbox(task, RunRecorder.attach(store, rid), backend=backend)
    try:
        return answer_approval(store, rid, action, arguments=arguments, reason=reason, model=model, sandbox=sandbox)
    finally:
        if sandbox is not None:
            sandbox.close()


def _score(store: TraceStore, run: AgentRun, result: RunResult, sandbox: Sandbox | None) -> None:
    from lab.scoring.runs import score_run

    try:
        task = run.get_task()
        if task is None:
            return
        scores = score_run(task, result.answer, store=store, run_id=run.run_id, sandbox=sandbox)
    except Exception as e:  # noqa: BLE001 - a scorer failing is recorded; the run stays done
        run.recorder.error(e, where="scoring")
        return
    elapsed = store.get_run(run.run_id)["elapsed"] or 0.0
    for s in scores:
        s.item_id = s.item_id or task.key
        store.add_score(run.run_id, s, elapsed=elapsed)
