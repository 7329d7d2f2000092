"""Live OpenTelemetry: with LAB_OTLP_ENDPOINT set, a real agent run's spans reach an OTLP/HTTP collector
while the run executes; killing the collector mid-run neither fails nor stops the run, and the spans that
never arrived are counted as dropped. Also against a real Phoenix when installed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from test_otlp_export import phoenix  # noqa: F401 - the real Phoenix fixture (skips when not installed)

from lab.agents import ReActAgent
from lab.models import ScriptedModel, ToolCall
from lab.tools import tool
from lab.traces import live_otlp
from lab.traces.otlp import trace_id

HERE = Path(__file__).resolve().parent


def _received(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def collector(tmp_path):
    out = tmp_path / "spans.jsonl"
    proc = subprocess.Popen([sys.executable, str(HERE / "otlp_collector.py"), str(out)], stdout=subprocess.PIPE,
                            text=True)
    port = int(proc.stdout.readline())
    yield proc, f"http://127.0.0.1:{port}", out
    if proc.poll() is None:
        proc.kill()
    proc.wait()


@pytest.fixture
def live_env(monkeypatch):
    def set_endpoint(url: str) -> None:
        monkeypatch.setenv("LAB_OTLP_ENDPOINT", url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")  # the SDK's batch delay, in milliseconds
    yield set_endpoint
    live_otlp.finish()


def test_spans_stream_during_the_run_and_a_killed_collector_never_fails_it(store, collector, live_env):
    proc, url, out = collector
    live_env(url)
    state: dict = {}

    @tool
    def wait_for_collector() -> str:
        """Wait until the collector holds this run's first model call."""
        for _ in range(200):
            if any(s["run_id"] == state["run_id"] and s["kind"] == "model_call" for s in _received(out)):
                return "seen"
            time.sleep(0.05)
        return "not seen"

    @tool
    def kill_collector() -> str:
        """Kill the collector."""
        proc.kill()
        proc.wait()
        return "killed"

    @tool
    def add(a: float, b: float) -> float:
        """Add.

        Args:
            a: First.
            b: Second.
        """
        return a + b

    script = [ToolCall("", "wait_for_collector", {}), ToolCall("", "kill_collector", {})]
    script += [ToolCall("", "add", {"a": i, "b": 1}) for i in range(5)] + [ToolCall("", "submit", {"answer": "ok"})]
    run = ReActAgent(ScriptedModel(script, name="scripted-m"),
                     [wait_for_collector, kill_collector, add]).start(store, "q", task="live/1")
    state["run_id"] = run.run_id
    res = run.run()
    assert (res.status, res.answer) == ("done", "ok")  # a dead collector never fails the run
    results = [e.attrs["content"] for e in store.events(res.run_id, kinds=["tool_result"])]
    assert results[:2] == ["seen", "killed"]  # spans arrived while the run was still executing

    report = live_otlp.finish()
    got = [s for s in _received(out) if s["run_id"] == res.run_id or s["trace_id"] == f"{trace_id(res.run_id):032x}"]
    n = store.count_events(res.run_id) + 1  # every event, and the run's root span
    assert report.queued == n and report.sent == len(got) and 0 < report.sent < n
    assert report.dropped == n - report.sent > 0
    assert f"dropped {report.dropped}" in report.line() and url in report.line()
    assert {s["trace_id"] for s in got} == {f"{trace_id(res.run_id):032x}"}
    by_id = {s["span_id"]: s for s in got}
    first_call = next(s for s in got if s["kind"] == "model_call")
    assert by_id[first_call["parent_id"]]["kind"] == "span"  # the step span, as in an after-the-fact export


def test_no_endpoint_no_listener(store, monkeypatch):
    from lab.traces import RunRecorder

    monkeypatch.delenv("LAB_OTLP_ENDPOINT", raising=False)
    RunRecorder.start(store, {"task": "t"}).finish()
    assert store._listeners == [] and live_otlp.finish() is None


def test_lab_run_otlp_option_reports(tmp_path, collector, lab_process):
    proc, url, out = collector
    script = tmp_path / "script.yaml"
    script.write_text(json.dumps({"cycle": True, "replies": [
        {"json": {"answer": "Ceftriaxone", "explanation": "x"}},
        {"json": {"message": "fine", "done": True}},
        {"json": {"message": "ok", "answer": "Ceftriaxone", "final": True}}]}))
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"name: live\ntasks: [medqa-open/dev-0001]\nloops: [dera]\nmodels: ['scripted:{script}']\n")
    res = lab_process("run", str(exp), "--store", str(tmp_path / "t.db"), "--otlp", url, "--no-progress")
    assert res.returncode == 0, res.stdout + res.stderr
    got = _received(out)
    assert f"otlp: sent {len(got)} spans to {url}" in res.stderr and len(got) > 3
    assert any(s["name"].startswith("run ") for s in got)


def test_real_phoenix_receives_spans_live(store, phoenix, live_env):  # noqa: F811
    live_env(phoenix)
    run = ReActAgent(ScriptedModel([ToolCall("", "submit", {"answer": "x"})], name="scripted-m"), []).start(
        store, "q", task="live/phoenix")
    res = run.run()
    report = live_otlp.finish()
    n = store.count_events(res.run_id) + 1
    assert (report.sent, report.dropped) == (n, 0)
    spans: list[dict] = []
    for _ in range(60):
        with urllib.request.urlopen(f"{phoenix}/v1/projects/default/spans?limit=100", timeout=10) as resp:
            spans = json.load(resp)["data"]
        if len(spans) >= n:
            break
        time.sleep(0.5)
    assert len(spans) == n and {s["context"]["trace_id"] for s in spans} == {f"{trace_id(res.run_id):032x}"}
