"""What a run and the views on runs need of a trace store: the :class:`Store` protocol.

:class:`~lab.traces.store.TraceStore` (a local SQLite file) and its PostgreSQL subclass implement it, and so does
a cluster worker's stand-in for the driver's store (:class:`lab.executors.remote_store.RemoteStore`); loops,
recorders and the run pipeline accept any. Its reads return the typed rows of :mod:`lab.traces.rows`; code
outside :mod:`lab.traces` reads the store through these methods, never with SQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from lab.traces.rows import EventValues, RunRow, ScoreRange, ScoreRow, StoreTotals
from lab.traces.schema import Event, RunStatus, Score


@runtime_checkable
class Store(Protocol):
    """The trace-store methods one run and the views on runs use (create, record, finish, read back, score).

    Attributes:
        path: The store file (checkpoints live beside it).
    """

    path: Path

    def create_run(self, config: dict[str, Any] | None = None, *, run_id: str | None = None, task: str | None = None,
                   agent: str | None = None, model: str | None = None, seed: int | None = None,
                   is_human: bool = False, status: str = RunStatus.RUNNING.value, created_at: float | None = None,
                   parent_run_id: str | None = None, fork_step: int | None = None,
                   batch_id: str | None = None) -> str:
        """Register a run; return its id."""
        ...

    def finish_run(self, run_id: str, status: str, *, error: str | None = None, elapsed: float | None = None,
                   finished_at: float | None = None) -> None:
        """Set a run's final status."""
        ...

    def reopen_run(self, run_id: str) -> None:
        """Mark a finished or interrupted run running again (to resume it)."""
        ...

    def get_run(self, run_id: str) -> RunRow:
        """One run's row (``config`` parsed)."""
        ...

    def list_runs(self, *, status: str | None = None, batch_id: str | None = None) -> list[RunRow]:
        """Runs, oldest first, optionally filtered."""
        ...

    def append(self, event: Event) -> Event:
        """Append one event (durable on return)."""
        ...

    def events(self, run_id: str, *, kinds: Iterable[str] | None = None, after_seq: int = -1) -> list[Event]:
        """A run's events in order."""
        ...

    def add_score(self, run_id: str, score: Score, *, elapsed: float = 0.0, ts: float | None = None,
                  span_id: str | None = None, parent_id: str | None = None, agent: str | None = None) -> Event:
        """Record a score."""
        ...

    def final_scores(self, run_id: str) -> dict[str, float | None]:
        """A run's final scores by name."""
        ...

    def last_elapsed(self, run_id: str, *, until: float | None = None) -> float:
        """The working time of a run's latest event (recorded at or before ``until``, when given)."""
        ...

    def latest_events(self, *, statuses: Iterable[str] | None = None, kinds: Iterable[str] | None = None,
                      run_id: str | None = None) -> list[Event]:
        """Each run's latest event (of runs with one of ``statuses``, where it is of one of ``kinds``)."""
        ...

    def event_values(self, kinds: Iterable[str], keys: Sequence[str | tuple[str, ...]]) -> list[EventValues]:
        """Some attribute values of every event of ``kinds``, by run and sequence number."""
        ...

    def scores(self, run_id: str | None = None, *, scorer: str | None = None, provenance: str | None = None,
               source: str | None = None, final_only: bool = False, valued: bool = False) -> list[ScoreRow]:
        """Scores with their provenance and details, in the order they were given."""
        ...

    def score_ranges(self, scorer: str, *, provenance: str | None = None) -> list[ScoreRange]:
        """The lowest and highest value ``scorer`` gave on each dimension."""
        ...

    def totals(self) -> StoreTotals:
        """Counts of runs, running runs and scores, and when a run last finished."""
        ...

    def take_lease(self, key: str, owner: str, token: str, ttl: float) -> str | None:
        """Take the lease on ``key`` atomically; ``None`` when taken, else the live holder."""
        ...

    def renew_lease(self, key: str, token: str, ttl: float) -> bool:
        """Extend a held lease; ``False`` when lost."""
        ...

    def release_lease(self, key: str, token: str | None) -> None:
        """Give up a lease."""
        ...
