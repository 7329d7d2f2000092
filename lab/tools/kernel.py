"""The ``kernel`` tool: cells in a persistent IPython kernel inside the run's sandbox (:mod:`lab.sandbox.kernel`).

Variables, imports and the working directory persist between calls, as in SUPER's Jupyter agents; ``!cmd``
runs a shell command. A cell past the tool timeout is interrupted (the kernel survives); a crashed kernel is
said and the next call starts a fresh one; ``restart=true`` starts over. Images a cell displays are saved in
the sandbox (``<workdir>/.kernel_outputs/``) and shown by path. The cell's structured outputs go into the
``tool_result`` event as ``lab.kernel.outputs``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lab.tools.base import ToolContext, ToolError, tool
from lab.traces.schema import KERNEL_OUTPUTS


@tool
def kernel(code: Annotated[str, Field(max_length=8000)] = "", restart: bool = False, *,
           ctx: ToolContext) -> str:
    """Run a cell in a persistent IPython kernel in the sandbox (variables persist; `!cmd` runs a shell command).

    Args:
        code: The cell's Python source (IPython syntax).
        restart: Restart the kernel first (variables are lost, files stay).
        ctx: The run's tool context (injected; not shown to the model).
    """
    from lab.sandbox.kernel import KernelError, kernel_for

    sandbox = ctx.require_sandbox("kernel")
    try:
        k = kernel_for(sandbox)
    except KernelError as e:
        raise ToolError(f"kernel: {e}") from None
    notes = []
    try:
        if restart:
            k.restart()
            notes.append("[kernel restarted: variables are lost, files stay]")
        elif not k.alive and k.starts == 0 and ctx.state.get("kernel_cells"):
            notes.append("[this run continues from a saved state: its files are restored, kernel state is not; "
                         "a fresh kernel started]")
        if not code.strip():
            if not restart:
                raise ToolError("kernel: give `code` to run, or `restart: true`")
            if not k.alive:
                k.start()
            return "\n".join(notes)
        res = k.execute(code, timeout=ctx.timeout)
    except KernelError as e:
        raise ToolError(f"kernel: {e}") from None
    ctx.state["kernel_cells"] = ctx.state.get("kernel_cells", 0) + 1
    res.notes = notes + res.notes
    ctx.attrs[KERNEL_OUTPUTS] = res.outputs()
    return res.text()
