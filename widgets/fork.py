"""Fork a stored agent run from a step with another model or prompt (the trace viewer's *fork* button).

The loop is rebuilt the way the runner built it (``lab.pipeline.build_agent`` from the run's task and loop
settings), attached to the stored run, and forked with ``AgentRun.fork`` into a new sandbox of the task (the
step's files restored from the snapshot store) when the task has one; the fork runs in the background while
the trace viewer follows it live.
"""

from __future__ import annotations

import dataclasses
import threading

from lab.agents import PROMPTS, AgentRun
from lab.agents.run import LOOPS
from lab.errors import LabError
from lab.experiment import LoopSpec
from lab.models import load_model
from lab.pipeline import build_agent
from lab.sandbox.base import Sandbox
from lab.sandbox.common import BaseSandbox
from lab.tasks import get_task
from lab.tasks.environment import open_task_sandbox
from lab.traces import TraceStore


def fork_run(store: TraceStore, run_id: str, step: int, *, model: str | None = None, prompt: str | None = None,
             background: bool = True) -> str:
    """Start a new run continuing ``run_id`` from ``step`` with a changed model and/or prompt.

    Args:
        store: The store holding the run.
        run_id: The run to fork (made by an agent loop).
        step: The step to continue from (the loop's step numbers, 0: the start).
        model: Model name for the fork (:func:`lab.models.load_model` forms); default: the run's.
        prompt: New system prompt (DERA: the Decider's prompt); default: unchanged.
        background: Run the fork in a background thread (the caller follows its trace); else wait.

    Returns:
        The new run's id (its ``parent_run_id`` and ``fork_step`` link it to the original).

    Raises:
        LabError: The run was not made by an agent loop, its task or model cannot be found, the loop
            saved no state at ``step``, or the step's sandbox files cannot be restored (nothing is recorded).
    """
    run = store.get_run(run_id)
    desc = run["config"].get("loop") or {}
    loop = desc.get("loop") if isinstance(desc, dict) else None
    if not isinstance(loop, str) or loop not in LOOPS:
        raise LabError(f"run {run['run_id']} was not made by an agent loop ({loop or run['agent']}); "
                       f"only runs of {', '.join(LOOPS.names())} can be forked")
    if not run["task"]:
        raise LabError(f"run {run['run_id']} records no task, so its loop cannot be rebuilt")
    task = get_task(run["task"])
    options: dict = {}
    if loop == "dera":
        kind = desc.get("kind", "qa")
        options["kind"] = kind
        if prompt:
            options["prompts"] = dataclasses.replace(PROMPTS[kind], decider=prompt)
    elif prompt:
        options["system_prompt"] = prompt
    chat = load_model(model or desc.get("decider") or desc.get("model") or run["model"] or "")
    agent = build_agent(LoopSpec(loop=loop, options=options), chat, task)
    parent = AgentRun.attach(store, run["run_id"], agent)
    sandbox: Sandbox | None = None
    if task.sandbox is not None:  # the fork works in a sandbox of its own, with the step's files restored
        snaps = parent.state_at(step).get("snapshots") or {}
        sandbox = open_task_sandbox(task, backend=next((s["backend"] for s in snaps.values()), "docker"))
    try:
        child = parent.fork(step, agent=agent, sandbox=sandbox)
    except BaseException:
        if sandbox is not None:
            sandbox.close()
        raise
    if isinstance(sandbox, BaseSandbox):  # the sandbox records into the fork from now on
        sandbox.recorder = child.recorder

    def drive() -> None:
        try:
            child.run()
        finally:
            if sandbox is not None:
                sandbox.close()

    if background:
        threading.Thread(target=drive, name=f"fork-{child.run_id}", daemon=True).start()
    else:
        drive()
    return child.run_id
