"""OTLP export: a run as OpenTelemetry spans (in-memory exporter, and a real Phoenix collector when present)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from lab.traces import RunRecorder, Score, schema
from lab.traces.otlp import OTLPExportError, export_runs, otlp_http_exporter, run_spans, trace_id

REPO = Path(__file__).resolve().parents[2]


def _dialog(store):
    rec = RunRecorder.start(store, {"task": "medqa-17", "agent": "dera", "model": "smollm2"})
    with rec.span("researcher", agent="researcher"):
        rec.emit(*schema.model_call(system="scripted", model="smollm2", input_tokens=120, output_tokens=30,
                                    latency=0.25, finish_reasons=["stop"],
                                    input_messages=[{"role": "user", "content": "hi"}]), agent="researcher")
    with rec.span("decider", agent="decider"):
        with rec.span("tools", agent="decider"):
            rec.emit(*schema.tool_call(tool_name="lookup", duration=1.5), agent="decider")
        rec.error(RuntimeError("tool failed"), agent="decider")
    rec.score(Score("exact_match", 1.0))
    rec.finish("failed", error="tool failed")
    return rec.run_id


def test_spans_form_the_run_tree(store):
    run_id = _dialog(store)
    events = store.events(run_id)
    exporter = InMemorySpanExporter()
    assert export_runs(store, [run_id], exporter) == len(events) + 1
    spans = exporter.get_finished_spans()
    by_id = {s.context.span_id: s for s in spans}
    root = spans[0]
    assert root.parent is None and root.name == "run medqa-17"
    assert root.status.status_code is StatusCode.ERROR and root.attributes["lab.run_id"] == run_id
    assert {s.context.trace_id for s in spans} == {trace_id(run_id)}

    by_seq = {s.attributes["lab.seq"]: s for s in spans[1:]}
    for ev in events:  # each event's span hangs from its recorded parent (or the root)
        span = by_seq[ev.seq]
        parent = by_id[span.parent.span_id]
        if ev.parent_id:
            assert f"{parent.context.span_id:016x}" == ev.parent_id
        else:
            assert parent is root
        assert span.attributes["lab.kind"] == ev.kind

    chat = next(s for s in spans if s.name == "chat smollm2")
    assert chat.attributes["gen_ai.usage.input_tokens"] == 120
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert list(chat.attributes["gen_ai.response.finish_reasons"]) == ["stop"]
    assert json.loads(chat.attributes["gen_ai.input.messages"]) == [{"role": "user", "content": "hi"}]
    assert chat.end_time - chat.start_time == 250_000_000
    assert by_id[chat.parent.span_id].name == "researcher"

    tool = next(s for s in spans if s.name == "execute_tool lookup")
    tools = by_id[tool.parent.span_id]
    decider = by_id[tools.parent.span_id]
    assert (tools.name, decider.name) == ("tools", "decider")
    assert decider.end_time >= tools.end_time >= tool.end_time  # a span lasts until its last child ends
    assert tool.end_time - tool.start_time == 1_500_000_000
    err = next(s for s in spans[1:] if s.attributes["lab.kind"] == "error")
    assert err.status.status_code is StatusCode.ERROR and "tool failed" in err.status.description
    score = next(s for s in spans if s.name == "evaluation exact_match")
    assert score.attributes["gen_ai.evaluation.score.value"] == 1.0


def test_imported_ids_that_are_not_otel_ids_still_form_a_tree(store):
    from lab.traces import Event

    run_id = store.create_run({"task": "t"}, status="done")
    store.append(Event(run_id, *schema.span("root-step"), span_id="step-1"))
    store.append(Event(run_id, "agent_message", {}, span_id="step-1.a", parent_id="step-1"))
    store.append(Event(run_id, "agent_message", {}, span_id="step-1", parent_id="missing"))  # duplicate id
    spans = run_spans(store, run_id)
    ids = [s.context.span_id for s in spans]
    assert len(set(ids)) == len(ids)
    assert spans[2].parent.span_id == spans[1].context.span_id
    assert spans[3].parent.span_id == spans[0].context.span_id


def test_unreachable_endpoint_is_a_clear_error(store, capsys):
    run_id = _dialog(store)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(OTLPExportError, match=f"could not deliver run {run_id}.*Connection refused"):
        export_runs(store, [run_id], otlp_http_exporter(f"http://127.0.0.1:{port}", timeout=2))
    assert capsys.readouterr().err == ""  # the exporter's retry log is folded into the one error


def _phoenix() -> str | None:
    for cand in (os.environ.get("LAB_PHOENIX"), str(REPO / ".venv-phoenix" / "bin" / "phoenix"),
                 shutil.which("phoenix")):
        if cand and Path(cand).is_file():
            return cand
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def phoenix(tmp_path):
    """A real Arize Phoenix server on loopback (``make phoenix`` installs it into .venv-phoenix)."""
    exe = _phoenix()
    if exe is None:
        pytest.skip("Arize Phoenix not installed: `make phoenix` (or set LAB_PHOENIX to its executable)")
    port = _free_port()
    env = {**os.environ, "PHOENIX_WORKING_DIR": str(tmp_path / "phoenix"), "PHOENIX_PORT": str(port),
           "PHOENIX_GRPC_PORT": str(_free_port()), "PHOENIX_HOST": "127.0.0.1"}
    log = open(tmp_path / "phoenix.log", "w")
    proc = subprocess.Popen([exe, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"Phoenix did not start: {(tmp_path / 'phoenix.log').read_text()[-2000:]}")
                time.sleep(1)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_real_phoenix_collector_receives_the_tree(store, phoenix, lab):
    run_id = _dialog(store)
    n = store.count_events(run_id) + 1
    store.close()
    r = lab("runs", "export", run_id, "--otlp", phoenix, "--store", str(store.path))
    assert r.returncode == 0, r.stderr
    assert f"sent {n} spans" in r.stderr
    spans: list[dict] = []
    for _ in range(60):  # Phoenix ingests asynchronously
        with urllib.request.urlopen(f"{phoenix}/v1/projects/default/spans?limit=100", timeout=10) as resp:
            spans = json.load(resp)["data"]
        if len(spans) >= n:
            break
        time.sleep(0.5)
    assert len(spans) == n
    tid = f"{trace_id(run_id):032x}"
    assert {s["context"]["trace_id"] for s in spans} == {tid}
    ids = {s["context"]["span_id"]: s for s in spans}
    root = next(s for s in spans if s["parent_id"] is None)
    assert root["name"] == "run medqa-17" and root["status_code"] == "ERROR"
    chat = next(s for s in spans if s["name"] == "chat smollm2")
    assert ids[chat["parent_id"]]["name"] == "researcher"
    tool = next(s for s in spans if s["name"] == "execute_tool lookup")
    assert ids[ids[tool["parent_id"]]["parent_id"]]["name"] == "decider"
    score = next(s for s in spans if s["name"] == "evaluation exact_match")
    assert score["attributes"]["gen_ai.evaluation.name"] == "exact_match"
