"""The driver's trace store as seen from a cluster worker.

A :class:`StoreSink` actor, placed on the driver's node, is the one writer of the driver's trace store and
LangGraph checkpoints for a batch's remote runs. On a worker, :class:`RemoteStore` implements the
:class:`~lab.traces.protocol.Store` (and :class:`RemoteCheckpointer` for the checkpointer): each call runs in the
sink and returns only once it is committed there. So events reach the driver's store while a run goes on, in
the order the run emitted them, and nothing a run recorded is lost when its node dies; a resumed run finds its
checkpoints whichever node it lands on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import ray
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
)
from langgraph.checkpoint.sqlite import SqliteSaver
from ray.actor import ActorProxy

from lab.traces.checkpoints import checkpointer_for
from lab.traces.protocol import Store
from lab.traces.rows import EventValues, RunRow, ScoreRange, ScoreRow, StoreTotals
from lab.traces.schema import Event, RunStatus, Score
from lab.traces.store import TraceStore


class StoreSink:
    """Holds the driver's trace store and checkpointer; workers call it (a Ray actor, many calls at once). It
    also carries the batch's stop signal to the workers.

    Args:
        path: The driver's trace store file; ``None`` for a batch whose workers open the store themselves (a
            PostgreSQL store): then the sink only carries the stop signal.
    """

    def __init__(self, path: str | None) -> None:
        self.store = TraceStore(path, recover=False) if path is not None else None
        self.saver = checkpointer_for(path) if path is not None else None
        self.stopping = False

    @ray.method
    def store_call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call a :class:`~lab.traces.protocol.Store` method of the store."""
        if method.startswith("_") or not hasattr(Store, method):
            raise AttributeError(f"TraceStore.{method} is not callable remotely")
        return getattr(self.store, method)(*args, **kwargs)

    @ray.method
    def saver_call(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call a checkpointer method (``list`` comes back as a list)."""
        out = getattr(self.saver, method)(*args, **kwargs)
        return list(out) if method == "list" else out

    @ray.method
    def ping(self) -> bool:
        """Answer once the actor is up."""
        return True

    @ray.method
    def stop(self) -> None:
        """Ask the batch's runs to stop (workers poll :meth:`stopped`)."""
        self.stopping = True

    @ray.method
    def stopped(self) -> bool:
        """Whether the batch was asked to stop."""
        return self.stopping


class RemoteStore:
    """The :class:`~lab.traces.protocol.Store` of a cluster worker: every method runs in a :class:`StoreSink`
    (returning once committed there).

    Args:
        sink: Handle of the batch's sink actor.
        path: The driver's store path (informational).

    Attributes:
        sink: The sink actor.
        checkpointer: Checkpoints of the runs, kept beside the driver's store.
    """

    readonly = False

    def __init__(self, sink: ActorProxy[StoreSink], path: str) -> None:
        self.sink = sink
        self.path = Path(path)
        self.checkpointer = RemoteCheckpointer(sink)

    def __reduce__(self) -> tuple[type[RemoteStore], tuple[ActorProxy[StoreSink], str]]:
        return (RemoteStore, (self.sink, str(self.path)))  # the checkpointer is rebuilt where it lands

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return ray.get(self.sink.store_call.remote(method, args, kwargs))

    def create_run(self, config: dict[str, Any] | None = None, *, run_id: str | None = None, task: str | None = None,
                   agent: str | None = None, model: str | None = None, seed: int | None = None,
                   is_human: bool = False, status: str = RunStatus.RUNNING.value, created_at: float | None = None,
                   parent_run_id: str | None = None, fork_step: int | None = None,
                   batch_id: str | None = None) -> str:
        """Register a run in the driver's store; return its id."""
        return self._call("create_run", config, run_id=run_id, task=task, agent=agent, model=model, seed=seed,
                          is_human=is_human, status=status, created_at=created_at, parent_run_id=parent_run_id,
                          fork_step=fork_step, batch_id=batch_id)

    def finish_run(self, run_id: str, status: str, *, error: str | None = None, elapsed: float | None = None,
                   finished_at: float | None = None) -> None:
        """Set a run's final status in the driver's store."""
        self._call("finish_run", run_id, status, error=error, elapsed=elapsed, finished_at=finished_at)

    def reopen_run(self, run_id: str) -> None:
        """Mark a finished or interrupted run running again (to resume it)."""
        self._call("reopen_run", run_id)

    def get_run(self, run_id: str) -> RunRow:
        """One run's row from the driver's store (``config`` parsed)."""
        return self._call("get_run", run_id)

    def list_runs(self, *, status: str | None = None, batch_id: str | None = None) -> list[RunRow]:
        """The driver's runs, oldest first, optionally filtered."""
        return self._call("list_runs", status=status, batch_id=batch_id)

    def append(self, event: Event) -> Event:
        """Append one event to the driver's store (committed there on return)."""
        return self._call("append", event)

    def events(self, run_id: str, *, kinds: Iterable[str] | None = None, after_seq: int = -1) -> list[Event]:
        """A run's events in order."""
        return self._call("events", run_id, kinds=list(kinds) if kinds is not None else None, after_seq=after_seq)

    def add_score(self, run_id: str, score: Score, *, elapsed: float = 0.0, ts: float | None = None,
                  span_id: str | None = None, parent_id: str | None = None, agent: str | None = None) -> Event:
        """Record a score in the driver's store."""
        return self._call("add_score", run_id, score, elapsed=elapsed, ts=ts, span_id=span_id, parent_id=parent_id,
                          agent=agent)

    def final_scores(self, run_id: str) -> dict[str, float | None]:
        """A run's final scores by name."""
        return self._call("final_scores", run_id)

    def last_elapsed(self, run_id: str, *, until: float | None = None) -> float:
        """The working time of a run's latest event (up to ``until``)."""
        return self._call("last_elapsed", run_id, until=until)

    def latest_events(self, *, statuses: Iterable[str] | None = None, kinds: Iterable[str] | None = None,
                      run_id: str | None = None) -> list[Event]:
        """:meth:`~lab.traces.store.TraceStore.latest_events` of the driver's store."""
        return self._call("latest_events", statuses=None if statuses is None else list(statuses),
                          kinds=None if kinds is None else list(kinds), run_id=run_id)

    def event_values(self, kinds: Iterable[str], keys: Sequence[str | tuple[str, ...]]) -> list[EventValues]:
        """:meth:`~lab.traces.store.TraceStore.event_values` of the driver's store."""
        return self._call("event_values", list(kinds), list(keys))

    def scores(self, run_id: str | None = None, *, scorer: str | None = None, provenance: str | None = None,
               source: str | None = None, final_only: bool = False, valued: bool = False) -> list[ScoreRow]:
        """:meth:`~lab.traces.store.TraceStore.scores` of the driver's store."""
        return self._call("scores", run_id, scorer=scorer, provenance=provenance, source=source,
                          final_only=final_only, valued=valued)

    def score_ranges(self, scorer: str, *, provenance: str | None = None) -> list[ScoreRange]:
        """:meth:`~lab.traces.store.TraceStore.score_ranges` of the driver's store."""
        return self._call("score_ranges", scorer, provenance=provenance)

    def totals(self) -> StoreTotals:
        """:meth:`~lab.traces.store.TraceStore.totals` of the driver's store."""
        return self._call("totals")

    def take_lease(self, key: str, owner: str, token: str, ttl: float) -> str | None:
        """Take the lease on ``key`` atomically; ``None`` when taken, else the live holder."""
        return self._call("take_lease", key, owner, token, ttl)

    def renew_lease(self, key: str, token: str, ttl: float) -> bool:
        """Extend a held lease; ``False`` when lost."""
        return self._call("renew_lease", key, token, ttl)

    def release_lease(self, key: str, token: str | None) -> None:
        """Give up a lease."""
        self._call("release_lease", key, token)

    def close(self) -> None:
        """Nothing to close on the worker side."""


_SCALARS = (str, int, float, bool, type(None))


def _plain(config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a LangGraph config a checkpointer reads: scalar ``configurable`` and ``metadata`` values
    (LangGraph's internal, unpicklable entries left out)."""
    return {part: {k: v for k, v in (config.get(part) or {}).items()
                   if not k.startswith("__") and isinstance(v, _SCALARS)}
            for part in ("configurable", "metadata")}


class RemoteCheckpointer(BaseCheckpointSaver[str]):
    """A LangGraph checkpointer whose checkpoints live in the driver's checkpoint database (through a sink)."""

    get_next_version = SqliteSaver.get_next_version  # the same version ids as the driver's saver

    def __init__(self, sink: ActorProxy[StoreSink]) -> None:
        super().__init__()
        self._sink = sink

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return ray.get(self._sink.saver_call.remote(method, args, kwargs))

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint ``config`` names (its thread's latest without a checkpoint id), if any."""
        return self._call("get_tuple", _plain(config))

    def list(self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
             before: RunnableConfig | None = None, limit: int | None = None) -> Iterator[CheckpointTuple]:
        """Checkpoints matching ``config`` and ``filter``, newest first."""
        yield from self._call("list", _plain(config) if config else None, filter=filter,
                              before=_plain(before) if before else None, limit=limit)

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
            new_versions: ChannelVersions) -> RunnableConfig:
        """Store a checkpoint; return the config that names it."""
        return self._call("put", _plain(config), checkpoint, metadata, new_versions)

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str = "") -> None:
        """Store a task's pending writes for a checkpoint."""
        self._call("put_writes", _plain(config), list(writes), task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint and write of a thread."""
        self._call("delete_thread", thread_id)
