"""Every event kind's builder writes what the lab's readers look for: the trace viewer shows it, the OTLP export
carries every attribute (and names, times and marks the span from them), the provenance reader finds it. A key
a writer and a reader spell differently fails here."""

from __future__ import annotations

from typing import Any

import pytest

from lab.traces import Event, RunRecorder, schema
from lab.traces.otlp import _attr, event_span
from lab.traces.schema import EventKind
from widgets.steps import Step, build_steps

# (event, what the trace viewer must show for it: Step field -> text it holds or equals)
CASES: list[tuple[schema.EventData, dict[str, Any]]] = [
    (schema.run_started(config={"task": "t", "prompt": "Sort the list."}), {"title": "task", "text": "Sort the list."}),
    (schema.run_started(config={"source": "super"}, super_sections={"query": "Train the model."}),
     {"text": "Train the model."}),
    (schema.run_finished("done", stop_reason="submitted", answer="42", steps=3, tokens=90),
     {"title": "done · submitted", "text": "42"}),
    (schema.run_finished("failed", error="the sandbox died"), {"title": "failed", "error": "the sandbox died"}),
    (schema.agent_message(content="Check the dose.", answer="5 mg", final=True, round_number=2),
     {"text": "Check the dose.", "note": "answer: 5 mg"}),
    (schema.agent_message(invalid_reply="not JSON", invalid_count=1, content="{oops"), {"error": "not JSON"}),
    (schema.agent_message(action="fork", fork_parent_run_id="p1", fork_step=4),
     {"title": "fork", "text": "forked from run p1 at step 4"}),
    (schema.agent_message(action="awaiting_approval", pending=[{"tool": "shell"}]), {"title": "awaiting_approval"}),
    (schema.model_call(system="scripted", model="m1", input_messages=[{"role": "user", "content": "What dose?"}],
                       output_messages=[{"role": "assistant", "content": "The dose is 5 mg."}],
                       response_model="m1-0125", finish_reasons=["length"], input_tokens=7, output_tokens=2,
                       latency=0.5, temperature=0.0),
     {"title": "m1-0125 · length", "text": "The dose is 5 mg.", "input": "[user] What dose?", "tokens_in": 7,
      "tokens_out": 2, "latency": 0.5}),
    (schema.model_call(system="openai", model="m2", input_messages=[], finish_reasons=["error"],
                       error_type="ModelError", error_message="server said 500", retryable=True, latency=1.5),
     {"title": "m2 · error", "error": "server said 500"}),
    (schema.tool_call(tool_name="shell", tool_call_id="c1", arguments={"command": "ls"}),
     {"title": "shell", "text": "shell(command='ls')", "call_id": "c1"}),
    (schema.tool_call(step=1, tool_name="execute", thought="Run it.", action="!python x.py", observation="done",
                      pre_executed=False, duration=2.0),
     {"note": "Run it.", "text": "!python x.py", "result": "done", "latency": 2.0}),
    (schema.tool_result(tool_name="shell", tool_call_id="c9", content="file.txt", duration=0.25,
                        error_type="ToolError", extra={schema.KERNEL_OUTPUTS: {"code": "1"}}),
     {"title": "shell", "result": "file.txt", "error": "ToolError", "latency": 0.25}),
    (schema.sandbox_exec(sandbox_id="s1", backend="local", command_args=["sh", "-c", "make test"], cwd="/w",
                         user=None, env_keys=["A"], timeout=None, exit_code=2, sandbox_duration=0.3, timed_out=False,
                         truncated=False, stdout="building\n", stdout_truncated=False, stderr="boom\n",
                         stderr_truncated=False),
     {"title": "exit 2", "text": "$ make test", "result": "building\nboom\n", "error": "exit code 2",
      "latency": 0.3}),
    (schema.sandbox_exec(backend="local", command_args=["sleep", "9"], timeout=1.0, exit_code=-1, timed_out=True),
     {"text": "$ sleep 9", "error": "timed out"}),
    (schema.sandbox_exec(op="snapshot", snapshot_ref="img:1", snapshot_archive="ab12", duration=0.1),
     {"title": "snapshot", "text": "img:1", "latency": 0.1}),
    (schema.sandbox_exec(op="snapshot", snapshot_archive="ab12", duration=0.1), {"text": "ab12"}),
    (schema.sandbox_file(op="copy_in", path="/w/data", sandbox_id="s1", backend="local", sandbox_duration=0.2,
                         local_path="/tmp/data"),
     {"title": "copy_in", "text": "/tmp/data → /w/data", "latency": 0.2}),
    (schema.sandbox_file(op="read_file", path="/w/x.txt", backend="inspect:docker", output="contents"),
     {"text": "/w/x.txt", "result": "contents"}),
    (schema.sandbox_file(op="restore", path="/w", snapshot="ref7"), {"text": "/w → ref7"}),
    (schema.sandbox_file(op="read", path="/w/missing", error_type="FileNotFoundError", error_message="no such file"),
     {"error": "no such file"}),
    (schema.human_action(action="submit", answer="42"), {"title": "submit", "text": "42"}),
    (schema.human_action(action="kernel_cell", tool_name="kernel", arguments={"code": "1+1"}, content="2",
                         duration=0.01), {"title": "kernel_cell", "text": "2"}),
    (schema.human_action(action="terminal_input", terminal_line="make test", terminal_id="1"),
     {"text": "make test"}),
    (schema.human_action(audit="approve", by="olga", decision="approve"), {"title": "approve", "text": "olga"}),
    (schema.human_action(action="pause", reason="lunch"), {"title": "pause", "text": "lunch"}),
    (schema.score(name="judge", value=0.5, provenance="model", source="smollm2", item_id="q1", dimension="clarity",
                  final=True, label="B", details={"explanation": "Mostly right."}),
     {"title": "judge = 0.5 (B)", "note": "dimension clarity · model · smollm2", "text": "Mostly right."}),
    (schema.limit(name="max_steps", value=3, used=3), {"title": "limit reached: max_steps", "text": "used 3 of 3"}),
    (schema.limit(limit_type="token", value=100, reason="token limit hit"),
     {"title": "limit reached: token", "text": "limit 100", "note": "token limit hit"}),
    (schema.error(message="boom", error_type="ValueError", traceback="Traceback ...", where="scoring"),
     {"title": "ValueError", "error": "boom", "text": "Traceback ...", "note": "scoring"}),
    (schema.span("step 1", step=1), {"title": "step 1"}),
    (schema.provenance({"sandbox": {"image": "lab-python:abc"}}), {"text": "lab-python:abc"}),
]


def _event(data: schema.EventData, seq: int = 0) -> Event:
    return Event("r", *data, seq=seq, ts=1_700_000_000.0 + seq, elapsed=float(seq), span_id=f"{seq + 1:016x}")


def test_every_kind_has_a_builder_and_a_case():
    assert set(schema.BUILDERS) == set(EventKind)
    assert {EventKind(d.kind) for d, _ in CASES} == set(EventKind)


@pytest.mark.parametrize(("data", "shown"), CASES, ids=[f"{d.kind}-{i}" for i, (d, _) in enumerate(CASES)])
def test_trace_viewer_shows_what_the_builder_wrote(data, shown):
    (step,) = build_steps([_event(data)])
    for field_name, want in shown.items():
        got = getattr(step, field_name)
        if isinstance(want, str) and field_name in ("text", "result", "note"):
            assert want in got, (field_name, got)
        else:
            assert got == want, (field_name, got)


@pytest.mark.parametrize(("data", "shown"), CASES, ids=[f"{d.kind}-{i}" for i, (d, _) in enumerate(CASES)])
def test_otlp_span_carries_every_attribute(data, shown):
    ev = _event(data)
    span = event_span("r", ev, 1, 2)
    attrs = dict(span.attributes or {})
    for key, value in data.attrs.items():
        if value is not None:
            assert attrs[key] == _attr(value), key
    names = {EventKind.MODEL_CALL.value: f"chat {data.attrs.get(schema.MODEL)}",
             EventKind.TOOL_CALL.value: f"execute_tool {data.attrs.get(schema.TOOL_NAME)}",
             EventKind.SCORE.value: f"evaluation {data.attrs.get(schema.EVAL_NAME)}",
             EventKind.SPAN.value: data.attrs.get(schema.SPAN_NAME)}
    if data.kind in names:
        assert span.name == names[data.kind]
    took = data.attrs.get(schema.LATENCY) or data.attrs.get(schema.DURATION)
    if took:
        assert (span.end_time - span.start_time) == pytest.approx(took * 1e9, abs=1e3)
    assert (span.status.status_code.name == "ERROR") is (data.kind == EventKind.ERROR.value)
    if data.kind == EventKind.ERROR.value:
        assert span.status.description == data.attrs[schema.ERROR_MESSAGE]


def test_recorded_run_reads_back_through_the_readers(store):
    """A run recorded with every builder through the recorder reads back the same: steps, provenance, the
    stored scores table and the final answer."""
    from lab.provenance import of_run
    from lab.scoring.rescore import run_output

    rec = RunRecorder.start(store, {"task": "t", "prompt": "Sort."}, provenance={"seed": 3})
    for data, _ in CASES:
        if data.kind not in (EventKind.RUN_STARTED.value, EventKind.RUN_FINISHED.value):
            rec.emit(*data)
    rec.finish("done", answer="[1, 2]", stop_reason="submitted")
    events = store.events(rec.run_id)
    assert [e.attrs for e in events[1:-1]] == [d.attrs for d, _ in CASES
                                               if d.kind not in ("run_started", "run_finished")]
    steps: list[Step] = build_steps(events)
    assert steps[0].text == "Sort." and steps[-1].text == "[1, 2]" and steps[-1].title == "done · submitted"
    assert of_run(store, rec.run_id) == {"seed": 3, "sandbox": {"image": "lab-python:abc"}}
    assert run_output(store, rec.run_id) == "[1, 2]"
    scores = store.scores_frame()
    row = scores[scores["scorer"] == "judge"].iloc[0]
    assert (row["value"], row["dimension"], row["provenance"], row["source"]) == (0.5, "clarity", "model", "smollm2")
