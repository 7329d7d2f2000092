"""The scorer interface and the registry that lets task files name scorers by string.

A scorer is any callable with a ``name`` attribute::

    scorer(output, target=None, **context) -> Score | list[Score]

``output`` is what the agent (or human) produced, ``target`` what the task expects (a gold answer, a
pattern, a list of landmarks ...). ``context`` carries what some scorers need and others ignore:
``sandbox`` (a :class:`lab.sandbox.Sandbox`, for script scorers), ``item_id``, ``question`` (for judges).
Scorers that give one number return one :class:`~lab.traces.Score`; judges with several rubric
dimensions return a list. :func:`as_scores` turns either into a list.

Register a scorer class with :func:`register_scorer`; :func:`get_scorer` builds one by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

from lab.errors import LabError
from lab.traces.schema import Score


class ScoringError(LabError):
    """A scorer cannot be built or cannot score (bad arguments, unknown name, bad target)."""


@runtime_checkable
class Scorer(Protocol):
    """Anything that turns an output (and a target) into scores."""

    name: str

    def __call__(self, output: Any, target: Any = None, **context: Any) -> Score | list[Score]:
        """Score ``output`` against ``target``.

        Args:
            output: What was produced (text, a parsed JSON object, a number, a transcript).
            target: What was expected; its meaning is the scorer's (gold answer, pattern, landmarks).
            **context: Extra inputs some scorers use (``sandbox``, ``item_id``, ``question``).

        Returns:
            One score, or one per rubric dimension. ``value`` is ``None`` when it could not score.
        """
        ...


def as_scores(result: Score | list[Score]) -> list[Score]:
    """A scorer's result as a list of scores."""
    return [result] if isinstance(result, Score) else list(result)


_REGISTRY: dict[str, Callable[..., Scorer]] = {}
T = TypeVar("T", bound=Callable[..., Any])


def register_scorer(name: str) -> Callable[[T], T]:
    """Class decorator: make a scorer factory available to :func:`get_scorer` as ``name``."""

    def deco(factory: T) -> T:
        if name in _REGISTRY and _REGISTRY[name] is not factory:
            raise ScoringError(f"a scorer named {name!r} is already registered")
        _REGISTRY[name] = factory
        return factory

    return deco


def get_scorer(name: str, **args: Any) -> Scorer:
    """Build the scorer registered as ``name`` with ``args`` (as written in a task file).

    Raises:
        ScoringError: Unknown name, or arguments the scorer does not take.
    """
    _load_builtin()
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ScoringError(f"unknown scorer {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None
    try:
        return factory(**args)
    except TypeError as e:
        raise ScoringError(f"scorer {name!r}: bad arguments {sorted(args)}: {e}") from e


def scorer_names() -> list[str]:
    """Names :func:`get_scorer` accepts."""
    _load_builtin()
    return sorted(_REGISTRY)


def _load_builtin() -> None:
    # Importing the modules registers their scorers.
    import lab.scoring.judge  # noqa: F401
    import lab.scoring.panel  # noqa: F401
    import lab.scoring.reference  # noqa: F401
    import lab.scoring.rules  # noqa: F401
    import lab.scoring.script  # noqa: F401
