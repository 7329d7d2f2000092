"""Trace steps read from the keys the lab's writers record: span depth, time and tokens per step, model input
next to output, tool calls with their results, sandbox commands, SUPER steps, colour codes, search, alignment."""

from __future__ import annotations

from lab.traces import Event, RunRecorder, schema
from widgets.render import COLLAPSE_CHARS, step_html, steps_html
from widgets.steps import align, build_steps, search, totals


def _events(store):
    rec = RunRecorder.start(store, {"task": "t"})
    with rec.span("researcher", agent="researcher"):
        rec.emit(*schema.model_call(system="scripted", model="m", input_tokens=10, output_tokens=3,
                                    input_messages=[{"role": "user", "content": "what dose?"}],
                                    output_messages=[{"role": "assistant", "content": "the dose is 5 mg"}],
                                    latency=0.25), agent="researcher")
        with rec.span("tool"):
            rec.emit(*schema.tool_result(tool_name="shell", content="x" * (COLLAPSE_CHARS + 1)))
    rec.emit(*schema.agent_message(content="final"), agent="decider")
    rec.finish()
    return store.events(rec.run_id)


def test_depth_tokens_and_time(store):
    steps = build_steps(_events(store))
    assert [s.kind for s in steps] == ["run_started", "span", "model_call", "span", "tool_result", "agent_message",
                                       "run_finished"]
    assert [s.depth for s in steps] == [0, 0, 1, 1, 2, 0, 0]
    assert steps[1].title == "researcher" and steps[2].text == "the dose is 5 mg"
    assert steps[2].input == "[user] what dose?" and steps[2].latency == 0.25
    t = totals(steps)
    assert (t["tokens_in"], t["tokens_out"], t["steps"]) == (10, 3, 7)
    assert all(s.dt >= 0 for s in steps) and t["elapsed"] == steps[-1].elapsed


def test_incremental_build_matches_full_build(store):
    events = _events(store)
    part = build_steps(events[:3])
    build_steps(events[3:], start=part)
    assert [(s.seq, s.depth, s.dt) for s in part] == [(s.seq, s.depth, s.dt) for s in build_steps(events)]


def test_search_and_highlight(store):
    steps = build_steps(_events(store))
    found = search(steps, "DOSE")
    assert [s.seq for s in found] == [2]
    assert "<mark>dose</mark>" in step_html(found[0], query="dose")
    assert search(steps, "") == steps


def test_long_output_collapses(store):
    steps = build_steps(_events(store))
    html = steps_html(steps)
    assert "(%s chars" % f"{COLLAPSE_CHARS + 1:,}" in html
    assert "input (1 messages" in html  # the model's input, collapsed next to its output


def test_align_pairs_matching_steps_and_marks_gaps():
    def ev(seq, data, agent):
        return Event("r", *data, seq=seq, agent=agent)

    a = build_steps([ev(0, schema.agent_message(content="a"), "researcher"),
                     ev(1, schema.tool_call(tool_name="ls"), ""),
                     ev(2, schema.agent_message(content="yes"), "decider")])
    b = build_steps([ev(0, schema.agent_message(content="a"), "researcher"),
                     ev(1, schema.agent_message(content="no"), "decider")])
    rows = align(a, b)
    assert [(x and x.seq, y and y.seq) for x, y in rows] == [(0, 0), (1, None), (2, 1)]


def test_tool_call_reads_as_a_call_with_its_result_beneath(store):
    rec = RunRecorder.start(store, {"task": "t"})
    rec.emit(*schema.tool_call(tool_name="shell", tool_call_id="c1", arguments={"command": "ls", "timeout": 5}))
    rec.emit(*schema.tool_result(tool_name="shell", tool_call_id="c1", content="\x1b[1;32mPASSED\x1b[0m\nnext",
                                 error_type="ToolError"))
    rec.emit(*schema.sandbox_exec(command_args=["sh", "-c", "make test"], exit_code=2, stdout="building\n",
                                  stderr="boom\n"))
    rec.finish()
    steps = build_steps(store.events(rec.run_id))
    call, exe = steps[1], steps[2]
    assert call.kind == "tool_call" and call.text == "shell(command='ls', timeout=5)"
    assert call.result == "PASSED\nnext" and call.error == "ToolError"  # colour codes stripped
    assert exe.text == "$ make test" and exe.result == "building\nboom\n" and exe.error == "exit code 2"
    html = step_html(call)
    assert "lab-error" in html and "\x1b" not in html


def test_imported_super_step_and_escaped_newlines():
    a = schema.tool_call(tool_name="execute", thought="Run the script.", action="!python train.py\\n--epochs 1",
                         observation="Epoch 1\r 50%\r100%\nTraceback (most recent call last):\nValueError: bad")
    (step,) = build_steps([Event("r", *a, seq=0)])
    assert step.note == "Run the script." and step.text == "!python train.py\n--epochs 1" and step.lang == "ipython3"
    assert step.result.splitlines()[0] == "100%" and step.error == "ValueError: bad"


def test_grades_added_later_do_not_reset_working_time(store):
    from lab.traces import Score

    rec = RunRecorder.start(store, {"task": "t"})
    rec.emit(*schema.agent_message(content="a"))
    rec.finish()
    last = store.events(rec.run_id)[-1].elapsed
    store.add_score(rec.run_id, Score("expert", 4.0, provenance="human", source="alice"))  # stored at time 0
    assert totals(build_steps(store.events(rec.run_id)))["elapsed"] == last


def test_span_tree_nests_spans_and_caps_long_lists(store):
    from widgets.render import TREE_LEAVES, tree_html

    rec = RunRecorder.start(store, {"task": "t"})
    with rec.span("decider", agent="decider") as decider:
        rec.emit(*schema.agent_message(content="draft"), agent="decider")
    with rec.span("researcher", agent="researcher"):
        rec.emit(*schema.agent_message(content="check"), agent="researcher")
    with rec.within(decider):  # the Decider's second turn: its own span, not the Researcher's
        rec.emit(*schema.agent_message(content="final"), agent="decider")
    for i in range(TREE_LEAVES + 10):
        rec.emit(*schema.tool_result(tool_name="shell", content=str(i)))
    rec.finish()
    steps = build_steps(store.events(rec.run_id))
    html = tree_html(steps)
    decider_part = html.split("span decider")[1].split("span researcher")[0]
    assert decider_part.count('class="leaf"') == 2 and "2 events" in decider_part
    assert "… 12 more events" in html  # root: run_started, finished and the results beyond the cap
    page = steps_html(steps, spans={s.span_id: s for s in steps if s.kind == "span"})
    assert "decider (continued" in page
