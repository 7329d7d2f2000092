"""Named extension points: loops, scorers, tools, executors, sandbox backends and model name prefixes.

Each extension point is one :class:`Registry`. A module adds to it with a decorator where the thing is
defined; lookups by name import the registry's built-in modules first, so a new module inside one of the
registry's packages is found without being listed anywhere.

```python
from lab.registry import Registry

WIDGETS: Registry[type] = Registry("widget", modules=("my_pkg.widgets",))

@WIDGETS.register("table")
class Table: ...

WIDGETS.get("table")        # Table;   WIDGETS.get("tabel") -> LabError: unknown widget 'tabel'; known: table
```
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType
from typing import Any, Generic, TypeVar, overload

from lab.errors import LabError

T = TypeVar("T")
F = TypeVar("F")


class Registry(Generic[T]):
    """Things of one kind by name.

    Args:
        kind: What is registered, for messages (``loop``, ``scorer`` ...).
        modules: Modules (or packages: every public module in them) whose import registers the built-in
            entries; imported on the first lookup.
        error: The error raised for unknown names and clashes.
        harvest: For registries of plain objects: names and objects to add from each imported module
            (the tool registry takes every module-level ``Tool``).
    """

    def __init__(self, kind: str, *, modules: Iterable[str] = (), error: type[LabError] = LabError,
                 harvest: Callable[[ModuleType], Iterable[tuple[str, T]]] | None = None) -> None:
        self.kind = kind
        self.modules = tuple(modules)
        self.error = error
        self._harvest = harvest
        self._entries: dict[str, T] = {}
        self._loaded = False
        self._lock = threading.RLock()

    @overload
    def register(self, name: str) -> Callable[[F], F]: ...

    @overload
    def register(self, name: str, obj: F) -> F: ...

    def register(self, name: str, obj: Any = None) -> Any:
        """Add ``obj`` under ``name``; without ``obj``, a decorator that adds what it decorates.

        Raises:
            LabError: (the registry's ``error``) Another object is already registered under ``name``.
        """
        def add(value: F) -> F:
            with self._lock:
                if name in self._entries and self._entries[name] is not value:
                    raise self.error(f"a {self.kind} named {name!r} is already registered")
                self._entries[name] = value  # type: ignore[assignment]
            return value

        return add if obj is None else add(obj)

    def remove(self, name: str) -> None:
        """Take ``name`` out (a plugin being reloaded, a test's temporary entry)."""
        with self._lock:
            self._entries.pop(name, None)

    def get(self, name: str) -> T:
        """The entry registered as ``name``.

        Raises:
            LabError: (the registry's ``error``) No entry of that name; the message lists the known ones.
        """
        self.load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise self.error(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        self.load()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs, sorted by name."""
        self.load()
        return sorted(self._entries.items())

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def load(self) -> None:
        """Import the built-in modules (once); their imports register what they define."""
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            for mod in _modules(self.modules):
                if self._harvest is not None:
                    for name, value in self._harvest(mod):
                        self._entries.setdefault(name, value)
            self._loaded = True


def _modules(names: tuple[str, ...]) -> Iterator[ModuleType]:
    """The modules named, a package standing for its public modules; a module whose optional dependency
    is not installed is left out."""
    for name in names:
        mod = _import(name)
        if mod is None:
            continue
        yield mod
        if hasattr(mod, "__path__"):
            for info in pkgutil.iter_modules(mod.__path__):
                if not info.name.startswith("_") and not info.ispkg:
                    sub = _import(f"{name}.{info.name}")
                    if sub is not None:
                        yield sub


def _import(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name and (e.name == name or not e.name.startswith("lab")):  # an optional dependency is missing
            return None
        raise
