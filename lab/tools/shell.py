"""Tools that act inside the run's sandbox: a shell, a Python runner and a file editor.

The shell keeps its working directory between calls (in the checkpointed tool state), so ``cd repo``
in one step holds for the next, also after a resume or a fork.
"""

from __future__ import annotations

import posixpath
import shlex
from typing import Annotated

from pydantic import Field

from lab.tools.base import ToolContext, ToolError, tool

_PWD_MARK = "__LAB_PWD__="
FAILED_MARK = "__LAB_FAILED__"
"""Starts a stderr line ``__LAB_FAILED__ STATUS LINE`` for each command line of a shell call that failed
(under bash with ``pipefail``, so a crash hidden behind ``| tail`` counts); the recorded sandbox output
keeps these lines, the observation does not. Line 1 is the command's first line."""
# bash with pipefail when the sandbox has bash (sh otherwise); an ERR trap reports each failing line
_RUNNER = 'if command -v bash >/dev/null 2>&1; then exec bash -c "$0"; else exec sh -c "$0"; fi'
_PRELUDE = ('if [ -n "$BASH_VERSION" ]; then set -o pipefail; '
            f'trap \'echo "{FAILED_MARK} $? $((LINENO - 1))" >&2\' ERR; fi')


def _cwd(ctx: ToolContext) -> str:
    return ctx.state.get("cwd") or ctx.require_sandbox("shell").workdir


def _path(ctx: ToolContext, path: str) -> str:
    return posixpath.normpath(posixpath.join(_cwd(ctx), path))


def format_exec(res, limit_note: str = "") -> str:
    """An :class:`~lab.sandbox.ExecResult` as observation text: output, then a status line when not 0."""
    out = res.stdout
    if res.stderr:
        out = f"{out}{'' if not out or out.endswith(chr(10)) else chr(10)}{res.stderr}"
    if res.timed_out:
        out += f"\n[timed out{limit_note}]"
    elif res.exit_code != 0:
        out += f"\n[exit code {res.exit_code}]"
    if res.truncated:
        out += "\n[output truncated]"
    return out


@tool
def shell(command: Annotated[str, Field(max_length=4000)], ctx: ToolContext) -> str:
    """Run a shell command in the sandbox and return its output.

    Args:
        command: The command line (run with bash, or sh where there is no bash; the working directory
            persists between calls).
        ctx: The run's tool context (injected; not shown to the model).
    """
    sandbox = ctx.require_sandbox("shell")
    cwd = _cwd(ctx)
    script = (f"cd {shlex.quote(cwd)} || exit 1; {_PRELUDE}\n{command}\n__rc=$?\n"
              f"echo; echo \"{_PWD_MARK}$(pwd)\"\nexit $__rc")
    res = sandbox.exec(["sh", "-c", _RUNNER, script], timeout=ctx.timeout)
    if FAILED_MARK in res.stderr:
        res.stderr = "".join(ln for ln in res.stderr.splitlines(keepends=True) if not ln.startswith(FAILED_MARK))
    lines = res.stdout.rstrip("\n").split("\n")
    if lines and lines[-1].startswith(_PWD_MARK):
        ctx.state["cwd"] = lines[-1][len(_PWD_MARK):]
        lines = lines[:-2] if len(lines) >= 2 and lines[-2] == "" else lines[:-1]
        res.stdout = "\n".join(lines) + ("\n" if lines else "")
    return format_exec(res, f" after {ctx.timeout} s")


@tool
def python(code: Annotated[str, Field(max_length=8000)], ctx: ToolContext) -> str:
    """Run a Python program in the sandbox (in the shell's working directory) and return its output.

    Args:
        code: The Python source to run with python3.
        ctx: The run's tool context (injected; not shown to the model).
    """
    sandbox = ctx.require_sandbox("python")
    n = ctx.state.get("python_runs", 0) + 1
    ctx.state["python_runs"] = n
    path = f"/tmp/lab_python_{n}.py"
    sandbox.write_file(path, code)
    res = sandbox.exec(["python3", path], cwd=_cwd(ctx), timeout=ctx.timeout)
    return format_exec(res, f" after {ctx.timeout} s")


@tool
def edit_file(path: Annotated[str, Field(max_length=500)], old: Annotated[str, Field(max_length=8000)],
              new: Annotated[str, Field(max_length=8000)], ctx: ToolContext) -> str:
    """Replace lines in a file: the exact text ``old`` becomes ``new``. An empty ``old`` writes the whole file.

    Args:
        path: The file (relative to the shell's working directory).
        old: The exact text to replace, indentation included; empty to create or overwrite the file.
        new: The text to put in its place.
        ctx: The run's tool context (injected; not shown to the model).
    """
    sandbox = ctx.require_sandbox("edit_file")
    full = _path(ctx, path)
    if not old:
        sandbox.write_file(full, new)
        return f"wrote {full} ({len(new)} characters)"
    try:
        text = sandbox.read_file(full).decode("utf-8", errors="replace")
    except FileNotFoundError:
        raise ToolError(f"edit_file: no file {full}") from None
    count = text.count(old)
    if count == 0:
        raise ToolError(f"edit_file: the text to replace was not found in {full}; nothing changed")
    if count > 1:
        raise ToolError(f"edit_file: the text to replace occurs {count} times in {full}; give more lines")
    sandbox.write_file(full, text.replace(old, new, 1))
    return f"edited {full}"
