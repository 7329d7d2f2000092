"""The driver's trace store as seen from a cluster worker.

A :class:`StoreSink` actor, placed on the driver's node, is the one writer of the driver's trace store and
LangGraph checkpoints for a batch's remote runs. On a worker, :class:`RemoteStore` stands in for the
:class:`~lab.traces.TraceStore` (and :class:`RemoteCheckpointer` for the checkpointer): each call runs in the
sink and returns only once it is committed there. So events reach the driver's store while a run goes on, in
the order the run emitted them, and nothing a run recorded is lost when its node dies; a resumed run finds its
checkpoints whichever node it lands on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ray
from langgraph.checkpoint.base import BaseCheckpointSaver, ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.sqlite import SqliteSaver

from lab.agents.checkpointing import checkpointer_for
from lab.traces.store import TraceStore


class StoreSink:
    """Holds the driver's trace store and checkpointer; workers call it (a Ray actor, many calls at once).

    Args:
        path: The driver's trace store file.
    """

    def __init__(self, path: str) -> None:
        self.store = TraceStore(path, recover=False)
        self.saver = checkpointer_for(path)
        self.stopping = False

    def store_call(self, method: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        """Call a public :class:`TraceStore` method."""
        if method.startswith("_"):
            raise AttributeError(f"TraceStore.{method} is not callable remotely")
        return getattr(self.store, method)(*args, **kwargs)

    def saver_call(self, method: str, args: tuple, kwargs: dict[str, Any]) -> Any:
        """Call a checkpointer method (``list`` comes back as a list)."""
        out = getattr(self.saver, method)(*args, **kwargs)
        return list(out) if method == "list" else out

    def ping(self) -> bool:
        return True

    def stop(self) -> None:
        """Ask the batch's runs to stop (workers poll :meth:`stopped`)."""
        self.stopping = True

    def stopped(self) -> bool:
        return self.stopping


class RemoteStore:
    """A :class:`~lab.traces.TraceStore` stand-in whose every method runs in a :class:`StoreSink`.

    Args:
        sink: Handle of the batch's sink actor.
        path: The driver's store path (informational).

    Attributes:
        checkpointer: Checkpoints of the runs, kept beside the driver's store.
    """

    readonly = False

    def __init__(self, sink: Any, path: str) -> None:
        self._sink = sink
        self.path = Path(path)
        self.checkpointer = RemoteCheckpointer(sink)

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)

        def call(*args: Any, **kwargs: Any) -> Any:
            return ray.get(self._sink.store_call.remote(method, args, kwargs))

        call.__name__ = method
        return call

    def close(self) -> None:
        """Nothing to close on the worker side."""


_SCALARS = (str, int, float, bool, type(None))


def _plain(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a LangGraph config a checkpointer reads: scalar ``configurable`` and ``metadata`` values
    (LangGraph's internal, unpicklable entries left out)."""
    return {part: {k: v for k, v in (config.get(part) or {}).items()
                   if not k.startswith("__") and isinstance(v, _SCALARS)}
            for part in ("configurable", "metadata")}


class RemoteCheckpointer(BaseCheckpointSaver):
    """A LangGraph checkpointer whose checkpoints live in the driver's checkpoint database (through a sink)."""

    get_next_version = SqliteSaver.get_next_version  # the same version ids as the driver's saver

    def __init__(self, sink: Any) -> None:
        super().__init__()
        self._sink = sink

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return ray.get(self._sink.saver_call.remote(method, args, kwargs))

    def get_tuple(self, config):
        return self._call("get_tuple", _plain(config))

    def list(self, config, *, filter=None, before=None, limit=None) -> Iterator:
        yield from self._call("list", _plain(config) if config else None, filter=filter,
                              before=_plain(before) if before else None, limit=limit)

    def put(self, config, checkpoint: Checkpoint, metadata: CheckpointMetadata, new_versions: ChannelVersions):
        return self._call("put", _plain(config), checkpoint, metadata, new_versions)

    def put_writes(self, config, writes, task_id: str, task_path: str = "") -> None:
        self._call("put_writes", _plain(config), list(writes), task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        self._call("delete_thread", thread_id)
