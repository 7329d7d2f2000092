"""Tools by name, as task files and experiments name them (``shell``, ``python``, chemistry tools ...).

Every module-level :class:`~lab.tools.base.Tool` of the modules in :data:`TOOLS`' list is found by its name;
a tool defined elsewhere is added with ``TOOLS.register(my_tool.name, my_tool)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import ModuleType

from lab.registry import Registry
from lab.tools.base import Tool, ToolError


def _module_tools(mod: ModuleType) -> Iterable[tuple[str, Tool]]:
    return [(v.name, v) for v in vars(mod).values() if isinstance(v, Tool)]


TOOLS: Registry[Tool] = Registry("tool", modules=("lab.tools.shell", "lab.tools.kernel", "lab.tools.chemistry"), error=ToolError,
                                 harvest=_module_tools)
"""Named tools (``submit`` is not one: loops add it themselves)."""


def available_tools() -> dict[str, Tool]:
    """Every named tool."""
    return dict(TOOLS.items())


def get_tools(names: list[str]) -> list[Tool]:
    """The tools with these names, in order.

    Raises:
        ToolError: A name is unknown (the message lists the known ones).
    """
    missing = [n for n in names if n not in TOOLS]
    if missing:
        raise ToolError(f"unknown tool(s) {missing}; known: {', '.join(TOOLS.names())}")
    return [TOOLS.get(n) for n in names]
