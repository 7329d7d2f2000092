"""Checks a loaded task can actually run here: its scorer exists, its image is defined, its files exist."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache

from lab.tasks.errors import TaskPathError
from lab.tasks.model import Task

__all__ = ["check_task", "gpu_count", "image_names", "unavailable_reason"]

def image_names() -> frozenset[str]:
    """Names of the sandbox images defined under ``sandboxes/`` (``$LAB_SANDBOXES`` overrides)."""
    from lab.sandbox.images import definitions

    return frozenset(definitions())


def check_task(task: Task) -> list[str]:
    """Problems that would stop the task from running, each naming the task (empty when it is fine).

    Checks: the scorer is registered in ``lab.scoring`` and accepts its arguments, the fallback scorer is
    registered; the sandbox image is defined; files to copy in exist and lie under the task file's directory
    (or an allowed one); landmark patterns compile. Problems of tasks loaded from a file name the file.
    """
    from lab.scoring import ScoringError, get_scorer, scorer_names

    out: list[str] = []
    name = f"{task.source}: task '{task.key}'" if task.source else f"task '{task.key}'"
    if task.scoring.scorer:
        try:
            get_scorer(task.scoring.scorer, **task.scoring.args)
        except ScoringError as e:
            out.append(f"{name}: {e}")
    fb = task.scoring.fallback
    if fb and fb.scorer not in scorer_names():  # not built: a judge would load its model
        out.append(f"{name}: unknown fallback scorer {fb.scorer!r}; known: {', '.join(scorer_names())}")
    if task.sandbox is not None:
        if task.sandbox.image not in image_names():
            from lab.sandbox.images import sandboxes_dir

            out.append(f"{name}: sandbox image '{task.sandbox.image}' is not defined under {sandboxes_dir()} "
                       f"(known: {', '.join(sorted(image_names())) or 'none'})")
        for i, c in enumerate(task.sandbox.copy_in):
            try:
                src = task.host_path(c.src)
            except TaskPathError as e:
                out.append(f"{name}: field 'sandbox.copy_in.{i}.src': {e}")
                continue
            if not src.exists():
                out.append(f"{name}: field 'sandbox.copy_in.{i}.src': file to copy in does not exist: {src}")
    elif task.kind in ("repo", "rd") or task.scoring.script is not None:
        out.append(f"{name}: needs a sandbox (kind '{task.kind}'"
                   f"{', scored by a script' if task.scoring.script else ''}) but names none")
    for pat in task.landmarks:
        try:
            re.compile(pat)
        except re.error as e:
            out.append(f"{name}: landmark {pat!r} is not a valid regular expression: {e}")
    return out


@cache
def gpu_count() -> int:
    """GPUs visible through ``nvidia-smi`` (0 when there is none)."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for ln in r.stdout.splitlines() if ln.startswith("GPU "))


def unavailable_reason(task: Task) -> str | None:
    """Why this machine cannot run the task (e.g. it needs GPUs), or ``None`` when it can."""
    if task.resources.gpus > gpu_count():
        return (f"task '{task.key}' needs {task.resources.gpus} GPU(s); this machine has {gpu_count()} "
                f"(nvidia-smi)")
    return None
