"""A run's recorder: the handle agents, sandboxes, models and humans write events through.

It keeps the pause-free working clock and the current span, so nested work renders as a tree.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lab.traces.schema as schema
from lab.traces.protocol import Store
from lab.traces.schema import Event, EventKind, RunStatus, Score
from lab.traces.store import score_event


class WorkClock:
    """Elapsed working time that stops while paused (the x-axis of budget curves)."""

    def __init__(self, offset: float = 0.0) -> None:
        self._offset = offset
        self._started = time.monotonic()
        self._paused_at: float | None = None

    @property
    def paused(self) -> bool:
        """Whether the clock is stopped."""
        return self._paused_at is not None

    def elapsed(self) -> float:
        """Seconds of working time so far."""
        end = self._paused_at if self._paused_at is not None else time.monotonic()
        return self._offset + end - self._started

    @classmethod
    def continuing(cls, store: Store, run_id: str) -> WorkClock:
        """A clock that continues a stored run's working time: from the larger of its recorded
        ``elapsed`` and its latest event's (a run whose process died never recorded its ``elapsed``)."""
        return cls(offset=max(store.get_run(run_id).get("elapsed") or 0.0, store.last_elapsed(run_id) or 0.0))

    def pause(self) -> None:
        """Stop the clock (nothing when already stopped)."""
        if self._paused_at is None:
            self._paused_at = time.monotonic()

    def resume(self) -> None:
        """Start the clock again where it stopped (nothing when running)."""
        if self._paused_at is not None:
            self._started += time.monotonic() - self._paused_at
            self._paused_at = None


def new_span_id() -> str:
    """A fresh random span id (16 hex digits)."""
    return uuid.uuid4().hex[:16]


class RunRecorder:
    """Writes one run's events, with spans and a working clock.

    Args:
        store: Where events go.
        run_id: The run (already created in ``store``).
        clock: Working clock; a fresh one by default.
        root_span: Span every top-level event hangs from (``None``: none).
    """

    def __init__(self, store: Store, run_id: str, *, clock: WorkClock | None = None,
                 root_span: str | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.clock = clock or WorkClock()
        self._local = threading.local()
        self._root_span = root_span
        self._finished = False
        if os.environ.get("LAB_OTLP_ENDPOINT"):  # stream spans live to an OTLP collector
            import lab.traces.live_otlp as live_otlp

            live_otlp.attach(store)

    @classmethod
    def start(cls, store: Store, config: dict[str, Any] | None = None, *, elapsed: float = 0.0,
              provenance: dict[str, Any] | None = None, **run_fields: Any) -> RunRecorder:
        """Create a run and record its ``run_started`` event.

        Args:
            store: Where the run goes.
            config: The run's configuration.
            elapsed: Working time the run starts from (a fork continues its parent's time at its step).
            provenance: What a reviewer needs to reproduce the run (see :mod:`lab.provenance`), recorded
                under ``lab.provenance``.
            run_fields: Other run columns (``is_human``, ``batch_id``, ``parent_run_id`` ...).
        """
        run_id = store.create_run(config, **run_fields)
        rec = cls(store, run_id, clock=WorkClock(offset=elapsed))
        rec.emit(*schema.run_started(config=config or {}, provenance=provenance))
        return rec

    @classmethod
    def attach(cls, store: Store, run_id: str) -> RunRecorder:
        """A recorder continuing a stored run (resume after a pause, a crash or a restart): its working
        clock goes on from where the run's recorded time stopped, so elapsed time never goes backwards."""
        return cls(store, run_id, clock=WorkClock.continuing(store, run_id))

    # -- spans ---------------------------------------------------------------------------------

    @property
    def current_span(self) -> str | None:
        """The innermost open span of this thread, else the run's root span."""
        stack = getattr(self._local, "stack", None)
        return stack[-1] if stack else self._root_span

    @contextmanager
    def span(self, name: str, *, agent: str | None = None, attrs: dict[str, Any] | None = None,
             kind: EventKind | str = EventKind.SPAN) -> Iterator[str]:
        """Open a child span: events emitted inside hang from it. Yields the span id."""
        span_id = new_span_id()
        self.emit(kind, {**schema.span(name).attrs, **(attrs or {})}, agent=agent, span_id=span_id)
        with self.within(span_id):
            yield span_id

    @contextmanager
    def within(self, span_id: str | None) -> Iterator[str | None]:
        """Re-enter a span opened earlier (e.g. a role's span in a later dialog turn): events emitted
        inside hang from ``span_id``. ``None`` leaves the current span as it is."""
        if span_id is None:
            yield self.current_span
            return
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        stack.append(span_id)
        try:
            yield span_id
        finally:
            stack.pop()

    # -- writing -------------------------------------------------------------------------------

    def emit(self, kind: EventKind | str, attrs: dict[str, Any] | None = None, *, agent: str | None = None,
             span_id: str | None = None, parent_id: str | None = None) -> Event:
        """Record one event now (durable on return)."""
        ev = Event(
            self.run_id, kind.value if isinstance(kind, EventKind) else kind, attrs or {},
            ts=time.time(), elapsed=self.clock.elapsed(),
            span_id=span_id or new_span_id(),
            parent_id=parent_id if parent_id is not None else self.current_span,
            agent=agent,
        )
        return self.store.append(ev)

    def score(self, score: Score, *, agent: str | None = None) -> Event:
        """Record a score at the current working time."""
        ev = score_event(self.run_id, score, elapsed=self.clock.elapsed(), ts=time.time(),
                         span_id=new_span_id(), parent_id=self.current_span, agent=agent)
        return self.store.append(ev)

    def error(self, error: BaseException | str, *, where: str | None = None, agent: str | None = None) -> Event:
        """Record an error (message, type, where, traceback)."""
        exc = error if isinstance(error, BaseException) else None
        return self.emit(*schema.error(
            message=str(error), error_type=type(exc).__name__ if exc is not None else None,
            traceback="".join(traceback.format_exception(exc))[-8000:] if exc is not None else None,
            where=where or None), agent=agent)

    def pause(self, reason: str = "") -> None:
        """Stop the working clock (recorded as a human action)."""
        if not self.clock.paused:
            self.emit(*schema.human_action(action="pause", reason=reason))
            self.clock.pause()

    def resume(self) -> None:
        """Restart the working clock."""
        if self.clock.paused:
            self.clock.resume()
            self.emit(*schema.human_action(action="resume"))

    def finish(self, status: RunStatus | str = RunStatus.DONE, *, error: str | None = None,
               stop_reason: str | None | schema.Absent = schema.ABSENT, answer: Any = schema.ABSENT,
               steps: int | None | schema.Absent = schema.ABSENT,
               tokens: int | None | schema.Absent = schema.ABSENT) -> None:
        """Record ``run_finished`` (:func:`lab.traces.schema.run_finished`) and set the run's final status
        (idempotent)."""
        if self._finished:
            return
        status = status.value if isinstance(status, RunStatus) else status
        elapsed = self.clock.elapsed()
        self.emit(*schema.run_finished(status, error=error or None, stop_reason=stop_reason, answer=answer,
                                       steps=steps, tokens=tokens))
        self.store.finish_run(self.run_id, status, error=error, elapsed=elapsed)
        self._finished = True

    @property
    def finished(self) -> bool:
        """Whether :meth:`finish` has recorded the run's end."""
        return self._finished
