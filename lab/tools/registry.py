"""Tools by name, as task files and experiments name them (``shell``, ``python``, chemistry tools ...)."""

from __future__ import annotations

import importlib

from lab.tools.base import Tool, ToolError

# Modules whose module-level Tool objects are available by name; imported on first use.
TOOL_MODULES = ("lab.tools.shell", "lab.tools.score", "lab.tools.chemistry")


def available_tools() -> dict[str, Tool]:
    """Every named tool (``submit`` excluded: loops add it themselves)."""
    found: dict[str, Tool] = {}
    for mod_name in TOOL_MODULES:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name == mod_name:  # that tool module is not installed in this build
                continue
            raise
        for value in vars(mod).values():
            if isinstance(value, Tool):
                found.setdefault(value.name, value)
    return found


def get_tools(names: list[str]) -> list[Tool]:
    """The tools with these names, in order.

    Raises:
        ToolError: A name is unknown (the message lists the known ones).
    """
    tools = available_tools()
    missing = [n for n in names if n not in tools]
    if missing:
        raise ToolError(f"unknown tool(s) {missing}; known: {', '.join(sorted(tools))}")
    return [tools[n] for n in names]
