"""A task's environment: its sandbox opened from the task's image and limits, files copied in, setup run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lab.tasks.errors import TaskError, TaskPathError
from lab.tasks.metr import MetrSession
from lab.tasks.model import Task, TaskSandbox
from lab.tasks.validate import unavailable_reason

if TYPE_CHECKING:
    from lab.sandbox import Sandbox, SandboxSpec
    from lab.traces.recorder import RunRecorder

__all__ = ["TaskEnvironment", "TaskUnavailable", "open_task_sandbox", "sandbox_spec"]


class TaskUnavailable(TaskError):
    """This machine cannot run the task (it needs a GPU, Docker ...); the message says why."""


def _task_box(task: Task) -> TaskSandbox:
    """The task's sandbox section; :class:`TaskError` when it runs without one."""
    if task.sandbox is None:
        raise TaskError(f"task '{task.key}' runs without a sandbox")
    return task.sandbox


def sandbox_spec(task: Task, *, backend: str = "docker") -> SandboxSpec:
    """The :class:`lab.sandbox.SandboxSpec` for a task: its image, user, workdir, CPUs, memory, GPUs, network.

    METR Task Standard tasks get a writable root filesystem (the family lives in ``/root``).

    Raises:
        TaskError: The task needs no sandbox.
    """
    from lab.sandbox import SandboxSpec

    r, box = task.resources, _task_box(task)
    return SandboxSpec(
        image=f"expertlab/{box.image}", backend=backend, network=r.network, user=box.user,
        workdir=box.workdir or "/work", cpus=r.cpus, memory=f"{int(r.memory_gb * 1024)}m",
        gpus=r.gpus or None, read_only_root=box.read_only_root and task.metr is None)


class TaskEnvironment:
    """An open sandbox prepared for one task; use as a context manager.

    On entry: check the machine can run the task, build the image when missing, open the sandbox, copy the
    task's files in, run its setup steps (and, for METR tasks, ``install`` and ``start``).

    Args:
        task: The task.
        recorder: Records sandbox events into the run's trace.
        backend: ``docker`` or ``local``.
        build: Build the task's image when it is missing or stale.

    Attributes:
        sandbox: The open sandbox.
        session: The METR session (``None`` for other tasks).

    Raises:
        TaskUnavailable: The task needs resources this machine lacks.
        TaskError: Copying in or a setup step failed (the message names the task and the step).
    """

    def __init__(self, task: Task, *, recorder: RunRecorder | None = None, backend: str = "docker",
                 build: bool = True) -> None:
        self.task, self.recorder, self.backend, self.build = task, recorder, backend, build
        self.sandbox: Sandbox | None = None
        self.session: MetrSession | None = None

    def __enter__(self) -> TaskEnvironment:
        self._open()
        return self

    def _open(self) -> Sandbox:
        """Check, build, open and prepare the sandbox (closed again when preparing fails); return it."""
        from lab.sandbox import open_sandbox

        task = self.task
        reason = unavailable_reason(task)
        if reason:
            raise TaskUnavailable(reason)
        spec, box = sandbox_spec(task, backend=self.backend), _task_box(task)
        if self.backend == "docker" and self.build:
            from lab.sandbox.images import ensure_image

            ensure_image(box.image, log=lambda _: None)
        self.sandbox = sb = open_sandbox(spec, recorder=self.recorder)
        try:
            self._prepare(box, sb)
        except BaseException:
            self.close()
            raise
        return sb

    def _prepare(self, box: TaskSandbox, sb: Sandbox) -> None:
        task = self.task
        for i, c in enumerate(box.copy_in):
            try:
                src = task.host_path(c.src)  # checked again here: the file system may have changed since loading
            except TaskPathError as e:
                raise TaskPathError(f"{task.source}: task '{task.key}': field 'sandbox.copy_in.{i}.src': {e}") from None
            if src.is_dir():
                sb.copy_in(src, c.dest)
            elif src.is_file():
                sb.write_file(c.dest, src.read_bytes())
            else:
                raise TaskError(f"task '{task.key}': file to copy in does not exist: {src}")
        for i, step in enumerate(box.setup, 1):
            res = sb.exec(step, timeout=1800)
            if not res.ok:
                why = "timed out" if res.timed_out else f"exit {res.exit_code}"
                raise TaskError(f"task '{task.key}': setup step {i} ({step[:80]!r}) failed ({why}): "
                                f"{(res.stderr or res.stdout)[-400:].strip()}")
        if task.metr is not None:
            self.session = MetrSession(task, sb)
            self.session.setup()

    def close(self) -> None:
        """Remove the sandbox (idempotent)."""
        if self.sandbox is not None:
            self.sandbox.close()

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_task_sandbox(task: Task, recorder: RunRecorder | None = None, *, backend: str = "docker") -> Sandbox:
    """Open and prepare a task's sandbox (as :class:`TaskEnvironment` does); the caller closes it.

    Raises:
        TaskUnavailable: The task needs resources this machine lacks.
        TaskError: Copying in or a setup step failed (the sandbox is closed).
    """
    return TaskEnvironment(task, recorder=recorder, backend=backend)._open()
