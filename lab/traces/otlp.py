"""OTLP export: a stored run as OpenTelemetry spans, for any OpenTelemetry backend (Phoenix, Jaeger ...).

Each run becomes one trace: a root span for the run, and one span per event, parented by the event's
``parent_id`` (events without a known parent hang from the root). Attributes keep their names, so the
``gen_ai.*`` ones arrive as the GenAI semantic conventions define them. Span ends come from
``lab.duration_s`` / ``lab.latency_s`` where an event has them; a ``span`` event ends with its last child.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

import lab.traces.schema as schema
from lab.errors import LabError
from lab.traces.rows import RunRow
from lab.traces.schema import Event, EventKind
from lab.traces.store import TraceStore, dumps

_SCOPE = InstrumentationScope("lab.traces.otlp", "1")
_RESOURCE = Resource.create({"service.name": "expertlab"})
_NS = 1_000_000_000


class OTLPExportError(LabError):
    """Spans could not be delivered to the OTLP endpoint."""


def _hash_id(text: str, bits: int) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[: bits // 4], 16) or 1


def trace_id(run_id: str) -> int:
    """The OpenTelemetry trace id of a run (stable: derived from the run id)."""
    return _hash_id(f"lab-trace:{run_id}", 128)


def _span_int(span_id: str | None) -> int | None:
    if span_id and len(span_id) == 16:
        try:
            return int(span_id, 16) or None
        except ValueError:
            return None
    return None


def _attr(value: Any) -> Any:
    """An OpenTelemetry attribute value: primitives and flat primitive lists as they are, else JSON."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
        return list(value)
    if (isinstance(value, (list, tuple)) and value
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        return [float(v) for v in value] if any(isinstance(v, float) for v in value) else list(value)
    return dumps(value)


def _span_name(ev: Event) -> tuple[str, dict[str, str]]:
    a = ev.attrs
    if ev.kind == EventKind.MODEL_CALL.value:
        return f"chat {a.get(schema.MODEL) or ''}".strip(), {schema.OPERATION: "chat"}
    if ev.kind == EventKind.TOOL_CALL.value:
        return f"execute_tool {a.get(schema.TOOL_NAME) or ''}".strip(), {schema.OPERATION: "execute_tool"}
    if ev.kind == EventKind.SCORE.value:
        return f"evaluation {a.get(schema.EVAL_NAME) or ''}".strip(), {}
    if ev.kind == EventKind.SPAN.value and a.get(schema.SPAN_NAME):
        return str(a[schema.SPAN_NAME]), {}
    return (f"{ev.kind} {ev.agent}" if ev.agent else ev.kind), {}


def _duration(attrs: dict[str, Any]) -> float:
    for key in (schema.DURATION, schema.LATENCY):
        v = attrs.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            return float(v)
    return 0.0


def run_spans(store: TraceStore, run_id: str) -> list[ReadableSpan]:
    """One run's trace as OpenTelemetry spans: the run's root span first, then one span per event.

    Args:
        store: Where the run is.
        run_id: The run (an unambiguous prefix is accepted).

    Returns:
        Finished spans, ready for any ``SpanExporter``.

    Raises:
        StoreError: No such run.
    """
    run = store.get_run(run_id)
    run_id = run["run_id"]
    events = store.events(run_id)
    root = root_id(run_id)

    # span ids: the recorded 16-hex id where it is one and unique, else one derived from run and seq
    ids: dict[str, int] = {}
    ev_ids: list[int] = []
    used = {root}
    for ev in events:
        sid = event_span_id(run_id, ev)
        if sid in used:
            sid = _hash_id(f"lab-span:{run_id}:{ev.seq}", 64)
        used.add(sid)
        ev_ids.append(sid)
        if ev.span_id and ev.span_id not in ids:
            ids[ev.span_id] = sid
    parents = [ids.get(ev.parent_id, root) if ev.parent_id else root for ev in events]
    parents = [root if p == s else p for p, s in zip(parents, ev_ids, strict=True)]

    starts = [int(ev.ts * _NS) for ev in events]
    ends = {sid: start + int(_duration(ev.attrs) * _NS) for sid, start, ev in zip(ev_ids, starts, events, strict=True)}
    for sid, parent in zip(reversed(ev_ids), reversed(parents), strict=True):  # a span lasts until its last child ends
        ends[parent] = max(ends.get(parent, 0), ends[sid])
    root_start = int(run["created_at"] * _NS)
    if starts:
        root_start = min(root_start, min(starts))
    root_end = max(ends.get(root, 0), int((run["finished_at"] or 0) * _NS), root_start)

    spans = [root_span(run, root_start, root_end)]
    for ev, sid, parent, start in zip(events, ev_ids, parents, starts, strict=True):
        spans.append(event_span(run_id, ev, sid, parent, max(ends[sid], start)))
    return spans


def _ctx(run_id: str, sid: int) -> SpanContext:
    return SpanContext(trace_id(run_id), sid, is_remote=False, trace_flags=TraceFlags(TraceFlags.SAMPLED))


def root_id(run_id: str) -> int:
    """The span id of a run's root span."""
    return _hash_id(f"lab-root:{run_id}", 64)


def event_span_id(run_id: str, ev: Event) -> int:
    """An event's span id: its recorded 16-hex id where it is one, else one derived from run and seq."""
    return _span_int(ev.span_id) or _hash_id(f"lab-span:{run_id}:{ev.seq}", 64)


def root_span(run: RunRow, start_ns: int, end_ns: int) -> ReadableSpan:
    """The root span of a run (its row as ``TraceStore.get_run`` returns it)."""
    root_attrs = {
        schema.RUN_ID: run["run_id"], schema.TASK: run["task"], schema.AGENT_NAME: run["agent"],
        schema.MODEL: run["model"], schema.STATUS: run["status"], schema.IS_HUMAN: run["is_human"],
        schema.ELAPSED: run["elapsed"], schema.RUN_SEED: run["seed"], schema.BATCH_ID: run["batch_id"],
        schema.RUN_CONFIG: dumps(run["config"]),
    }
    failed = run["status"] == "failed"
    return ReadableSpan(
        name=f"run {run['task'] or run['run_id']}", context=_ctx(run["run_id"], root_id(run["run_id"])), parent=None,
        resource=_RESOURCE, attributes={k: _attr(v) for k, v in root_attrs.items() if v is not None},
        kind=SpanKind.INTERNAL, instrumentation_scope=_SCOPE,
        status=Status(StatusCode.ERROR, run["error"] or "failed") if failed else Status(StatusCode.OK),
        start_time=start_ns, end_time=end_ns,
    )


def event_span(run_id: str, ev: Event, sid: int, parent: int, end_ns: int | None = None) -> ReadableSpan:
    """The span of one event (``end_ns`` defaults to its start plus its recorded duration)."""
    name, extra = _span_name(ev)
    attrs = {k: _attr(v) for k, v in ev.attrs.items() if v is not None}
    attrs.update({schema.RUN_ID: run_id, schema.SEQ: ev.seq, schema.KIND: ev.kind,
                  schema.ELAPSED: ev.elapsed, **extra})
    if ev.agent:
        attrs.setdefault(schema.AGENT_NAME, ev.agent)
    is_error = ev.kind == EventKind.ERROR.value
    start = int(ev.ts * _NS)
    end = end_ns if end_ns is not None else start + int(_duration(ev.attrs) * _NS)
    return ReadableSpan(
        name=name, context=_ctx(run_id, sid), parent=_ctx(run_id, parent), resource=_RESOURCE, attributes=attrs,
        kind=SpanKind.CLIENT if ev.kind == EventKind.MODEL_CALL.value else SpanKind.INTERNAL,
        instrumentation_scope=_SCOPE,
        status=Status(StatusCode.ERROR, str(ev.attrs.get(schema.ERROR_MESSAGE, ""))) if is_error else Status(),
        start_time=start, end_time=max(end, start),
    )


def otlp_http_exporter(endpoint: str, *, timeout: float = 10.0) -> SpanExporter:
    """The OTLP/HTTP (protobuf) span exporter for ``endpoint``.

    Args:
        endpoint: A collector's base URL (``http://127.0.0.1:4318``) or its full ``/v1/traces`` URL.
        timeout: Seconds to wait for the collector.
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    url = endpoint.rstrip("/")
    if not url.endswith("/v1/traces"):
        url += "/v1/traces"
    return OTLPSpanExporter(endpoint=url, timeout=timeout)


def export_runs(store: TraceStore, run_ids: Iterable[str], exporter: SpanExporter) -> int:
    """Send runs' spans through ``exporter`` (one batch per run).

    Returns:
        The number of spans sent.

    Raises:
        StoreError: A run id is unknown.
        OTLPExportError: The exporter reported a failure.
    """
    n = 0
    for rid in run_ids:
        spans: Sequence[ReadableSpan] = run_spans(store, rid)
        with _exporter_log() as log:
            ok = exporter.export(spans) is SpanExportResult.SUCCESS
        if not ok:
            why = f": {log[-2] if len(log) > 1 else log[-1]}" if log else ""
            raise OTLPExportError(f"the OTLP exporter could not deliver run {rid}'s {len(spans)} spans to"
                                  f" {getattr(exporter, '_endpoint', type(exporter).__name__)}{why}")
        n += len(spans)
    return n


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage().splitlines()[0].split(" encountered while")[0][:300])


@contextmanager
def _exporter_log() -> Iterator[list[str]]:
    """Collect the OTLP exporter's log lines (retries, failures) instead of printing them."""
    logger = logging.getLogger("opentelemetry.exporter.otlp")
    handler = _Collect()
    lines = handler.lines
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield lines
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
