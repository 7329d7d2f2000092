"""Tools by name, as task files and experiments name them (``shell``, ``python``, chemistry tools ...).

Every module-level :class:`~lab.tools.base.Tool` of the modules in :data:`TOOLS`' list is found by its name;
a tool defined elsewhere is added with ``TOOLS.register(my_tool.name, my_tool)``, or named by its import path,
``module:function`` (a typed function with a docstring, or a :class:`~lab.tools.base.Tool`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType

from lab.registry import Registry
from lab.tools.base import Tool, ToolError, tool


def _module_tools(mod: ModuleType) -> Iterable[tuple[str, Tool]]:
    return [(v.name, v) for v in vars(mod).values() if isinstance(v, Tool)]


TOOLS: Registry[Tool] = Registry("tool", modules=("lab.tools.shell", "lab.tools.kernel", "lab.tools.score",
                                                     "lab.tools.chemistry"),
                                 error=ToolError, harvest=_module_tools)
"""Named tools (``submit`` is not one: loops add it themselves)."""


def available_tools() -> dict[str, Tool]:
    """Every named tool."""
    return dict(TOOLS.items())


def get_tools(names: list[str]) -> list[Tool]:
    """The tools with these names (registered names, or ``module:function`` import paths), in order.

    Raises:
        ToolError: A name is unknown (the message lists the known ones), or an import path does not import
            or names no function or tool.
    """
    missing = [n for n in names if ":" not in n and n not in TOOLS]
    if missing:
        raise ToolError(f"unknown tool(s) {missing}; known: {', '.join(TOOLS.names())}")
    return [import_tool(n) if ":" in n else TOOLS.get(n) for n in names]


def import_tool(ref: str) -> Tool:
    """The tool at ``module:function`` (a :class:`Tool` as is; a typed function made one with :func:`tool`).

    Raises:
        ToolError: The module does not import (its error, with file and line for a syntax error), it has no
            such attribute, or the attribute is neither a function nor a tool.
    """
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise ToolError(f"tool {ref!r}: an import path is module:function")
    try:
        mod = importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - whatever the module raises, said in one line
        raise ToolError(f"tool {ref!r}: cannot import {module!r}: {type(e).__name__}: {e}") from None
    obj: object = mod
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ToolError(f"tool {ref!r}: {getattr(mod, '__file__', module)} has no {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, Tool):
        return obj
    if not callable(obj):
        raise ToolError(f"tool {ref!r}: {attr!r} is a {type(obj).__name__}, not a function or Tool")
    try:
        return tool(obj)
    except ToolError as e:
        raise ToolError(f"tool {ref!r}: {e}") from None
