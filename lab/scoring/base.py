"""The scorer interface and the registry that lets task files name scorers by string.

A scorer is any callable with a ``name`` attribute::

    scorer(output, target=None, **context) -> Score | list[Score]

``output`` is what the agent (or human) produced, ``target`` what the task expects (a gold answer, a
pattern, a list of landmarks ...). ``context`` carries what some scorers need and others ignore:
``sandbox`` (a :class:`lab.sandbox.Sandbox`, for script scorers), ``item_id``, ``question`` (for judges).
Scorers that give one number return one :class:`~lab.traces.Score`; judges with several rubric
dimensions return a list. :func:`as_scores` turns either into a list.

Register a scorer class with :func:`register_scorer` (an entry of :data:`SCORERS`); :func:`get_scorer`
builds one by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar, runtime_checkable

from lab.errors import LabError
from lab.registry import Registry
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


SCORERS: Registry[Callable[..., Scorer]] = Registry("scorer", modules=("lab.scoring",), error=ScoringError)
"""Scorer factories by name (every module of ``lab.scoring`` registers its own)."""
T = TypeVar("T", bound=Callable[..., Any])


def register_scorer(name: str) -> Callable[[T], T]:
    """Class decorator: make a scorer factory available to :func:`get_scorer` as ``name``."""
    return SCORERS.register(name)


def get_scorer(name: str, **args: Any) -> Scorer:
    """Build the scorer registered as ``name`` with ``args`` (as written in a task file).

    Raises:
        ScoringError: Unknown name, or arguments the scorer does not take.
    """
    factory = SCORERS.get(name)
    try:
        return factory(**args)
    except TypeError as e:
        raise ScoringError(f"scorer {name!r}: bad arguments {sorted(args)}: {e}") from e


def scorer_names() -> list[str]:
    """Names :func:`get_scorer` accepts."""
    return SCORERS.names()
