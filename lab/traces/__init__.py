"""Trace store: one append-only event schema for everything a run does."""

from lab.traces.backend import open_trace_store
from lab.traces.errors import StoreError, TraceImportError
from lab.traces.locations import default_store_path
from lab.traces.recorder import RunRecorder, WorkClock
from lab.traces.rows import EventValues, RunRow, ScoreRange, ScoreRow, StoreTotals
from lab.traces.schema import Event, EventKind, Provenance, RunStatus, Score
from lab.traces.store import TraceStore

__all__ = [
    "Event", "EventKind", "EventValues", "Provenance", "RunRecorder", "RunRow", "RunStatus", "Score", "ScoreRange",
    "ScoreRow", "StoreError", "StoreTotals", "TraceImportError", "TraceStore", "WorkClock", "default_store_path",
    "open_trace_store",
]
