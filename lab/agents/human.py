"""The human expert's attempt: an interactive shell in the task's sandbox with a pausable task clock.

A session is a run like an agent's (``is_human``), with the same events: every command is a
``tool_call`` of the ``shell`` tool and its output a ``tool_result``; ``pause``/``resume``, intermediate
``score`` requests and ``submit`` are ``human_action`` events; scores carry their pause-free elapsed time.
So human and agent attempts compare directly (budget curves, best-of-k).

Commands besides shell lines: ``pause``, ``resume``, ``status``, ``score [ANSWER]`` (when the task allows
intermediate scores), ``submit ANSWER``, ``quit``, ``help``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from lab.agents.limits import Limits, record_limit
from lab.agents.run import RunResult, RunSandboxOpener, is_sandbox
from lab.errors import LabError
from lab.provenance import collect, record_sandbox
from lab.sandbox.snapshot_store import SnapshotStore
from lab.tools.base import ToolContext, ToolError
from lab.tools.shell import shell
from lab.tools.submit import parse_answer
from lab.traces.protocol import Store
from lab.traces.recorder import RunRecorder
from lab.traces.schema import EventKind, RunStatus

if TYPE_CHECKING:
    from lab.sandbox.base import Sandbox
    from lab.tasks.model import Task
from lab.traces.schema import (
    SANDBOX_OP,
    SNAPSHOT_ARCHIVE,
    human_action,
    sandbox_exec,
    tool_call,
    tool_result,
)

HELP = """Commands:
  <shell command>    run it in the sandbox (the working directory persists)
  pause / resume     stop / restart the task clock (no commands run while paused)
  status             time used and budget left
  score [ANSWER]     an intermediate score, where the task allows it
  submit ANSWER      hand in your final answer and end the session
  quit               end without submitting
  help               this list"""


class HumanSession:
    """One human expert's attempt at a task.

    Args:
        store: The trace store.
        task: The task (a :class:`lab.tasks.Task`).
        expert: Who is working (recorded as ``human:<expert>``).
        sandbox: The task's sandbox, or a function of the run's recorder opening it (``None``: no shell).
        limits: Limits (default: the task's working time, or its wall time taken as working time).
        stdin: Where commands are read from.
        stdout: Where output is written.
        resume: An interrupted (or paused) session's run id to continue: same run, working time continuing
            from what was recorded, the sandbox's workdir restored from the run's last workdir snapshot.
    """

    def __init__(self, store: Store, task: Task, *, expert: str, sandbox: Sandbox | RunSandboxOpener | None = None,
                 limits: Limits | None = None,
                 stdin: TextIO | None = None, stdout: TextIO | None = None, resume: str | None = None) -> None:
        self.store = store
        self.task = task
        self.expert = expert
        self.agent = f"human:{expert}"
        b = task.budgets  # a person's clock is working time: pauses never count against it
        self.limits = limits or Limits(steps=None, working_time_s=b.working_time_s or b.wall_time_s)
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        cfg = {"task": task.key, "agent": "human", "model": self.agent, "expert": expert,
               "prompt": task.instructions, "limits": self.limits.to_dict()}
        self.recorder = RunRecorder.start(store, cfg, is_human=True, provenance=collect(task=task)) \
            if resume is None else _reattach(store, resume, task)
        self.run_id = self.recorder.run_id
        row = store.get_run(self.run_id)
        self.created_at = row["created_at"]
        if resume is not None:  # the session's expert stays who began it
            self.expert = (row["config"] or {}).get("expert") or expert
            self.agent = f"human:{self.expert}"
        self._last_snapshot: str | None = None
        try:
            self.sandbox: Sandbox | None = sandbox if is_sandbox(sandbox) else None
            if self.sandbox is None and callable(sandbox):
                self.sandbox = sandbox(self.recorder)
            record_sandbox(self.recorder, self.sandbox)
            if resume is not None and self.sandbox is not None:
                self._restore_workdir()
        except BaseException as e:
            self.recorder.error(e, where="sandbox")
            self.recorder.finish(RunStatus.FAILED, error=f"the sandbox could not start: {e}")
            opened = getattr(self, "sandbox", None)
            if resume is not None and opened is not None:
                opened.close()
            raise
        self.ctx = ToolContext(sandbox=self.sandbox, recorder=self.recorder, task=task)
        self.commands = 0

    # -- workdir snapshots (what a resumed session gets back) -------------------------------------

    @property
    def archives(self) -> SnapshotStore | None:
        """The snapshot store beside the trace store (``None`` for a store with no folder)."""
        path = getattr(self.store, "path", None)
        return SnapshotStore.beside(path) if isinstance(path, (str, os.PathLike)) else None

    def snapshot_workdir(self) -> str | None:
        """Archive the sandbox's workdir into the snapshot store, recorded as a ``sandbox_exec`` snapshot event
        (what ``resume`` restores); the archive's digest, or ``None`` with no sandbox or store folder."""
        if self.sandbox is None or self.archives is None:
            return None
        t0 = time.perf_counter()
        digest = self.archives.save(self.sandbox, self.run_id)
        if digest != self._last_snapshot:
            self._last_snapshot = digest
            self.recorder.emit(*sandbox_exec(op="snapshot", snapshot_archive=digest,
                                             duration=round(time.perf_counter() - t0, 6)), agent=self.agent)
        return digest

    def _restore_workdir(self) -> None:
        snaps = [e.attrs[SNAPSHOT_ARCHIVE] for e in self.store.events(self.run_id, kinds=[EventKind.SANDBOX_EXEC])
                 if e.attrs.get(SANDBOX_OP) == "snapshot" and e.attrs.get(SNAPSHOT_ARCHIVE)]
        if snaps and self.archives is not None and self.sandbox is not None:
            self.archives.restore(self.sandbox, snaps[-1])
            self._last_snapshot = snaps[-1]
            self._act("restore", snapshot_archive=snaps[-1])

    def _print(self, text: str = "") -> None:
        self.stdout.write(text + ("" if text.endswith("\n") else "\n"))
        self.stdout.flush()

    def _read(self) -> str | None:
        paused = " (paused)" if self.recorder.clock.paused else ""
        self.stdout.write(f"[{self._clock()}{paused}] $ ")
        self.stdout.flush()
        line = self.stdin.readline()
        return None if line == "" else line.rstrip("\n")

    def _clock(self) -> str:
        s = int(self.recorder.clock.elapsed())
        return f"{s // 3600:d}:{s // 60 % 60:02d}:{s % 60:02d}"

    def run(self) -> RunResult:
        """Read and run commands until ``submit``, ``quit``, end of input or the time budget; then finish."""
        self._print(f"Task {self.task.key} (run {self.run_id})\n\n{self.task.instructions}\n")
        if self.sandbox is None:
            self._print("This task has no sandbox: answer with `submit ANSWER`.")
        self._print(HELP)
        try:
            while True:
                hit = self.limits.exceeded(steps=0, tokens=0, created_at=self.created_at,
                                           working_s=self.recorder.clock.elapsed())
                if hit is not None:
                    record_limit(self.recorder, *hit, agent=self.agent)
                    self._print(f"time is up ({hit[0]} {hit[1]} s)")
                    return self._finish(RunStatus.DONE, f"limit:{hit[0]}")
                line = self._read()
                if line is None:
                    return self._finish(RunStatus.CANCELLED, "end_of_input")
                result = self._handle(line.strip())
                if result is not None:
                    return result
        except KeyboardInterrupt:
            return self._finish(RunStatus.INTERRUPTED, "keyboard_interrupt")
        except Exception as e:
            self.recorder.error(e, where="human session")
            return self._finish(RunStatus.FAILED, "error", f"{type(e).__name__}: {e}")

    def _handle(self, line: str) -> RunResult | None:
        word, _, rest = line.partition(" ")
        rest = rest.strip()
        if not line:
            return None
        if word == "help":
            self._print(HELP)
        elif word == "pause":
            self.recorder.pause(rest)
            self._print("clock paused; `resume` to continue")
        elif word == "resume":
            self.recorder.resume()
            self._print("clock running")
        elif word == "status":
            left = self.limits.working_time_s
            self._print(f"working time {self._clock()}"
                        + (f", {max(0, left - self.recorder.clock.elapsed()):.0f} s left" if left else "")
                        + f", {self.commands} commands")
        elif word == "quit":
            self._act("quit")
            return self._finish(RunStatus.CANCELLED, "quit")
        elif self.recorder.clock.paused:
            self._print("the clock is paused: `resume` first")
        elif word == "score":
            self._intermediate(rest)
        elif word == "submit":
            if not rest:
                self._print("usage: submit ANSWER")
                return None
            return self._submit(rest)
        else:
            self._command(line)
        return None

    def _act(self, action: str, **attrs: Any) -> None:
        """Record a ``human_action`` event; ``attrs`` are :func:`lab.traces.schema.human_action`'s parameters."""
        self.recorder.emit(*human_action(action=action, **attrs), agent=self.agent)

    def _command(self, line: str) -> None:
        if self.sandbox is None:
            self._print("this task has no sandbox: answer with `submit ANSWER`")
            return
        self.commands += 1
        self.recorder.emit(*tool_call(tool_name="shell", arguments={"command": line}), agent=self.agent)
        try:
            out = shell({"command": line}, self.ctx)
        except ToolError as e:
            out = f"Error: {e}"
        except KeyboardInterrupt:
            out = "^C (command interrupted)"
        self.recorder.emit(*tool_result(tool_name="shell", content=out), agent=self.agent)
        self._print(out.rstrip("\n"))

    def _intermediate(self, answer: str) -> None:
        if not self.task.scoring.intermediate:
            self._print("this task does not give intermediate scores")
            return
        self._act("score", answer=answer or None)
        from lab.scoring.runs import score_intermediate

        _, shown = score_intermediate(self.task, parse_answer(answer) if answer else None, recorder=self.recorder,
                                      sandbox=self.sandbox, agent=self.agent)
        self._print(shown)

    def _submit(self, answer: str) -> RunResult:
        value, shown = self._score_submission(answer)
        self._print(shown)
        return self._finish(RunStatus.DONE, "submitted", answer=value)

    def _score_submission(self, answer: str) -> tuple[Any, str]:
        """Record the submission and score it through the pipeline every run kind uses (a scorer failure is
        recorded; the submission stands); the answer as parsed and a line saying the scores."""
        from lab.scoring.runs import score_run

        value = parse_answer(answer) if self.task.kind == "repo" else answer
        self._act("submit", answer=value)
        try:
            scores = score_run(self.task, value, store=self.store, run_id=self.run_id, sandbox=self.sandbox)
        except Exception as e:  # noqa: BLE001 - a scorer failure is recorded; the submission stands
            self.recorder.error(e, where="scoring")
            scores = []
        for s in scores:
            self.recorder.score(s, agent=self.agent)
        return value, "submitted" + (": " + ", ".join(f"{s.scorer}={s.value}" for s in scores) if scores else "")

    def _finish(self, status: RunStatus, reason: str, error: str | None = None, answer: Any = None) -> RunResult:
        self.recorder.resume()  # the clock stops at the finish, not at a pause
        self.recorder.finish(status, error=error if status is RunStatus.FAILED else None, stop_reason=reason,
                             answer=answer)
        self._print(f"session {status.value} ({reason}); run {self.run_id}")
        return RunResult(self.run_id, status.value, answer, reason, self.commands, 0, error)


def _reattach(store: Store, run_id: str, task: Task) -> RunRecorder:
    """Reopen an interrupted human run of ``task``: a recorder whose clock continues from its recorded time.

    Raises:
        LabError: Not a human run of this task, or it finished (done, failed, cancelled).
    """
    row = store.get_run(run_id)
    if not row["is_human"] or (row["config"] or {}).get("task") != task.key:
        raise LabError(f"run {row['run_id']} is not a human session of task {task.key}")
    if row["status"] not in (RunStatus.INTERRUPTED.value, "paused"):
        raise LabError(f"run {row['run_id']} is {row['status']}: only an interrupted session can be resumed")
    store.reopen_run(row["run_id"])
    rec = RunRecorder.attach(store, row["run_id"])  # the clock goes on from the recorded working time
    elapsed = rec.clock.elapsed()
    rec.emit(*human_action(action="reattach", resumed_at=round(elapsed, 6)),
             agent=f"human:{(row['config'] or {}).get('expert')}")
    return rec

