"""Copy a whole trace store between backends (SQLite file ⇄ PostgreSQL), row for row.

Runs (whatever their status, owner included), events (stored attribute text byte for byte), scores and
LangGraph checkpoints are copied verbatim, so a store copied there and back exports the same JSONL bytes.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.traces.errors import StoreError
from lab.traces.store import _RUN_COLUMNS, TraceStore

if TYPE_CHECKING:
    from langgraph.checkpoint.base import BaseCheckpointSaver

_EVENT_COLS = "run_id, seq, ts, elapsed, kind, span_id, parent_id, agent, attrs"
_SCORE_COLS = "run_id, seq, item_id, scorer, dimension, value, label, provenance, source, final, elapsed, ts"


@dataclass
class CopyCounts:
    """What a copy moved."""

    runs: int = 0
    events: int = 0
    scores: int = 0
    checkpoints: int = 0


def is_empty(store: TraceStore) -> bool:
    """Whether a store holds no runs and no events."""
    return store.query("SELECT COUNT(*) FROM runs")[0][0] == 0 and store.count_events() == 0


def _existing_saver(store: TraceStore) -> BaseCheckpointSaver[str] | None:
    """The store's checkpointer; ``None`` for a SQLite store without a checkpoint file (none is made)."""
    from lab.traces.checkpoints import checkpoint_path

    if isinstance(store.path, Path) and not checkpoint_path(store.path).exists():
        return None
    return store.checkpointer


def copy_store(src: TraceStore, dst: TraceStore, *, batch_runs: int = 200) -> CopyCounts:
    """Copy every run, event, score and checkpoint of ``src`` into the empty store ``dst``.

    Raises:
        StoreError: ``dst`` is not empty (nothing is written), or a write fails (runs copied so far stay,
            each batch of runs lands whole).
    """
    if not is_empty(dst):
        raise StoreError(f"{dst.path} is not empty; copy into an empty store")
    counts = CopyCounts()
    run_ids = [r[0] for r in src.query("SELECT run_id FROM runs ORDER BY created_at, run_id")]
    cols = ",".join(_RUN_COLUMNS)
    for i in range(0, len(run_ids), batch_runs):
        chunk = run_ids[i:i + batch_runs]
        marks = ",".join("?" * len(chunk))
        runs = src.query(f"SELECT {cols} FROM runs WHERE run_id IN ({marks})", chunk)
        events = src.query(f"SELECT {_EVENT_COLS} FROM events WHERE run_id IN ({marks}) ORDER BY run_id, seq", chunk)
        scores = src.query(f"SELECT {_SCORE_COLS} FROM scores WHERE run_id IN ({marks})", chunk)
        with dst._write() as conn:
            conn.executemany(f"INSERT INTO runs ({cols}) VALUES ({','.join('?' * len(_RUN_COLUMNS))})", runs)
            if events:
                conn.executemany(f"INSERT INTO events ({_EVENT_COLS}) VALUES ({','.join('?' * 9)})", events)
            if scores:
                conn.executemany(f"INSERT INTO scores ({_SCORE_COLS}) VALUES ({','.join('?' * 12)})", scores)
        counts.runs += len(runs)
        counts.events += len(events)
        counts.scores += len(scores)
    # Events of runs that have no run row (possible in an imported or damaged store) are copied too.
    orphans = src.query(f"SELECT {_EVENT_COLS} FROM events WHERE run_id NOT IN (SELECT run_id FROM runs)"
                        " ORDER BY run_id, seq")
    if orphans:
        with dst._write() as conn:
            conn.executemany(f"INSERT INTO events ({_EVENT_COLS}) VALUES ({','.join('?' * 9)})", orphans)
        counts.events += len(orphans)
    counts.checkpoints = copy_checkpoints(src, dst)
    return counts


def copy_checkpoints(src: TraceStore, dst: TraceStore) -> int:
    """Copy every LangGraph checkpoint (and its pending writes) of ``src``'s runs into ``dst``'s checkpointer,
    parents before children; return how many."""
    source = _existing_saver(src)
    if source is None:
        return 0
    tuples = list(source.list(None))
    if not tuples:
        return 0
    target = dst.checkpointer
    for t in sorted(tuples, key=lambda t: t.checkpoint["id"]):
        conf = t.config["configurable"]
        parent = t.parent_config or {"configurable": {"thread_id": conf["thread_id"],
                                                      "checkpoint_ns": conf.get("checkpoint_ns", "")}}
        saved = target.put(parent, t.checkpoint, t.metadata, dict(t.checkpoint.get("channel_versions", {})))
        by_task: dict[str, list[tuple[str, Any]]] = defaultdict(list)
        for task_id, channel, value in t.pending_writes or []:
            by_task[task_id].append((channel, value))
        for task_id, writes in by_task.items():
            target.put_writes(saved, writes, task_id)
    return len(tuples)


def clear_store(store: TraceStore) -> None:
    """Remove everything a store holds, for ``lab store copy --force``: a SQLite store's files are deleted
    (and made anew when reopened); a PostgreSQL store's tables are dropped."""
    from lab.traces import checkpoints as checkpointing

    checkpoint_path = checkpointing.checkpoint_path
    if isinstance(store.path, Path):
        checkpointing._savers.pop(str(checkpoint_path(store.path).resolve()), None)
        store.close()
        for p in (store.path, checkpoint_path(store.path)):
            for f in (p, Path(f"{p}-wal"), Path(f"{p}-shm")):
                f.unlink(missing_ok=True)
        return
    with store._write() as conn:
        conn.execute("DROP TABLE IF EXISTS events, scores, runs, meta, checkpoints, checkpoint_blobs,"
                     " checkpoint_writes, checkpoint_migrations CASCADE")
    checkpointing._savers.pop(getattr(store, "url", ""), None)
    store.close()
