"""Live OpenTelemetry: every event a run records streams as a span to an OTLP/HTTP collector while it runs.

Set ``LAB_OTLP_ENDPOINT`` (or pass ``--otlp URL`` to ``lab run``) and every :class:`~lab.traces.RunRecorder`
hooks the process's :class:`LiveOTLP` to its store as an event listener: each committed event becomes the
span :func:`lab.traces.otlp.event_span` makes of it (same trace, span and parent ids as an after-the-fact
export), and the run's root span follows its ``run_finished``. Spans go through the OpenTelemetry SDK's
``BatchSpanProcessor``: queued and sent in batches from a background thread, so recording never waits on
the network. When the collector is down a batch fails fast (no retries for a few seconds after a failure)
and its spans are counted as dropped; nothing is raised into the run. :func:`finish` flushes, shuts down
and returns its :class:`LiveReport` (``line()``: ``sent N spans to URL; dropped M``); it also runs at exit.

A ``span`` event's span is sent when the span opens, so it is as long as its own recorded duration (an
after-the-fact export stretches it to its last child).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from lab.traces.otlp import _exporter_log, _span_int, event_span, event_span_id, otlp_http_exporter, root_id, root_span
from lab.traces.schema import STATUS, Event, EventKind

ENV = "LAB_OTLP_ENDPOINT"
_NS = 1_000_000_000
_PAUSE_S = 5.0  # after a failed batch, later batches fail at once for this long (the collector is down)


@dataclass(frozen=True)
class LiveReport:
    """What a :class:`LiveOTLP` delivered: spans queued, sent (acknowledged by the collector), dropped."""

    endpoint: str
    queued: int
    sent: int
    dropped: int
    last_error: str | None = None

    def line(self) -> str:
        """``otlp: sent N spans to URL`` (with the drops and the last error when there were any)."""
        s = f"otlp: sent {self.sent} spans to {self.endpoint}"
        if self.dropped:
            s += f"; dropped {self.dropped} (collector unreachable or too slow"
            s += f": {self.last_error})" if self.last_error else ")"
        return s


class _CountingExporter(SpanExporter):
    """Counts what the wrapped exporter delivered; fails fast while the collector is known to be down."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner
        self.sent = 0
        self.failed = 0
        self.last_error: str | None = None
        self._down_until = 0.0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if time.monotonic() < self._down_until:
            self.failed += len(spans)
            return SpanExportResult.FAILURE
        try:
            with _exporter_log() as log:
                ok = self.inner.export(spans) is SpanExportResult.SUCCESS
        except Exception as e:  # noqa: BLE001 - an exporter bug must not reach the run
            ok, log = False, [f"{type(e).__name__}: {e}"]
        if ok:
            self.sent += len(spans)
            return SpanExportResult.SUCCESS
        self.failed += len(spans)
        self.last_error = (log[-2] if len(log) > 1 else log[-1]) if log else "export failed"
        self._down_until = time.monotonic() + _PAUSE_S
        return SpanExportResult.FAILURE

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class LiveOTLP:
    """Streams recorded events as spans to an OTLP/HTTP collector (a store event listener).

    Args:
        endpoint: The collector's base URL (``http://127.0.0.1:4318``) or its ``/v1/traces`` URL.
        exporter: The span exporter (default: OTLP/HTTP protobuf to ``endpoint``).
        timeout: Seconds one export may take before its batch counts as dropped.
        schedule_delay_ms: Most milliseconds a span waits in the queue (default: ``$OTEL_BSP_SCHEDULE_DELAY``
            or the SDK's 5000).
        max_queue_size: Spans held while the collector is slow; beyond it spans are dropped.
    """

    def __init__(self, endpoint: str, *, exporter: SpanExporter | None = None, timeout: float = 5.0,
                 schedule_delay_ms: float | None = None, max_queue_size: int | None = None) -> None:
        self.endpoint = endpoint
        self._exporter = _CountingExporter(exporter or otlp_http_exporter(endpoint, timeout=timeout))
        self._processor = BatchSpanProcessor(self._exporter, max_queue_size=max_queue_size,
                                             schedule_delay_millis=schedule_delay_ms)
        self._lock = threading.Lock()
        self._queued = 0
        self._closed: LiveReport | None = None

    def __call__(self, store: Any, events: list[Event]) -> None:
        """The store listener: queue the spans of committed events (never raises)."""
        if self._closed is not None:
            return
        try:
            spans = []
            for ev in events:
                parent = _span_int(ev.parent_id) or root_id(ev.run_id)
                spans.append(event_span(ev.run_id, ev, event_span_id(ev.run_id, ev), parent))
                if ev.kind == EventKind.RUN_FINISHED.value:
                    run = store.get_run(ev.run_id)
                    run["status"] = str(ev.attrs.get(STATUS, run["status"]))
                    start = int(run["created_at"] * _NS)
                    spans.append(root_span(run, start, max(int(ev.ts * _NS), start)))
            with self._lock:
                self._queued += len(spans)
            for span in spans:
                self._processor.on_end(span)
        except Exception as e:  # noqa: BLE001 - telemetry must never fail a run
            self._exporter.last_error = f"{type(e).__name__}: {e}"

    def report(self) -> LiveReport:
        """Counts so far (spans still queued are neither sent nor dropped yet)."""
        if self._closed is not None:
            return self._closed
        e = self._exporter
        return LiveReport(self.endpoint, self._queued, e.sent, e.failed, e.last_error)

    def close(self, timeout_s: float = 10.0) -> LiveReport:
        """Send what is queued (waiting at most ``timeout_s``), stop, and report; spans not sent are dropped."""
        if self._closed is not None:
            return self._closed
        self._processor.force_flush(int(timeout_s * 1000))
        if self._exporter.failed:  # the collector went down: what is left is dropped without waiting again
            self._exporter._down_until = float("inf")
        self._processor.shutdown()  # type: ignore[no-untyped-call]  # the SDK leaves it unannotated
        e = self._exporter
        self._closed = LiveReport(self.endpoint, self._queued, e.sent, self._queued - e.sent, e.last_error)
        return self._closed


def _quiet_queue_full(record: logging.LogRecord) -> bool:
    return "Queue full" not in record.getMessage()  # such drops are counted and reported instead


logging.getLogger("opentelemetry.sdk._shared_internal").addFilter(_quiet_queue_full)

_live: LiveOTLP | None = None
_live_lock = threading.Lock()


def current() -> LiveOTLP | None:
    """The process's live exporter for ``$LAB_OTLP_ENDPOINT`` (created on first use), or ``None``."""
    global _live
    endpoint = os.environ.get(ENV)
    if not endpoint:
        return None
    with _live_lock:
        if _live is None or _live.endpoint != endpoint or _live._closed is not None:
            _live = LiveOTLP(endpoint)
            atexit.register(_at_exit, _live)
        return _live


def attach(store: Any) -> None:
    """Stream ``store``'s events live when ``$LAB_OTLP_ENDPOINT`` is set (called by every run recorder)."""
    live = current()
    if live is not None and hasattr(store, "add_listener"):
        store.add_listener(live)


def finish() -> LiveReport | None:
    """Flush and close the process's live exporter; its report, or ``None`` when there was none."""
    global _live
    with _live_lock:
        live, _live = _live, None
    return live.close() if live is not None else None


def _at_exit(live: LiveOTLP) -> None:
    if live._closed is None and live._queued:
        print(live.close(timeout_s=5.0).line(), file=sys.stderr)
