"""The working clock continues across pause/resume, a crash (kill -9) and resume, and forks."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
import time

from lab.agents import AgentRun, Limits, ReActAgent
from lab.models import ScriptedModel, ToolCall
from lab.tools import tool

STEP_S = 0.2


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first.
        b: The second.
    """
    return a + b


def slow_add(_messages):
    time.sleep(STEP_S)
    return ToolCall("", "add", {"a": 1, "b": 1})


def monotonic(store, run_id):
    els = [e.elapsed for e in store.events(run_id)]
    return all(b >= a for a, b in itertools.pairwise(els)), els


CHILD = textwrap.dedent("""
    import sys, time
    from lab.agents import Limits, ReActAgent
    from lab.models import ScriptedModel, ToolCall
    from lab.traces import TraceStore
    from tests.agents.test_working_clock import add, slow_add

    store = TraceStore(sys.argv[1])
    run = ReActAgent(ScriptedModel(slow_add), [add], limits=Limits(steps=10_000)).start(store, "count")
    print(run.run_id, flush=True)
    run.run()
""")


def test_killed_run_resumes_its_clock(tmp_path):
    from lab.traces import TraceStore

    path = tmp_path / "traces.db"
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    run_id = proc.stdout.readline().strip()
    store = TraceStore(path)
    deadline = time.monotonic() + 120
    while len(store.events(run_id, kinds=["tool_result"])) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)  # mid-step: no run_finished, no elapsed on the run row
    proc.wait()
    before_wall = time.monotonic() - t0
    store.close()

    store = TraceStore(path)  # marks the dead run interrupted
    row = store.get_run(run_id)
    assert row["status"] == "interrupted"
    before = max(e.elapsed for e in store.events(run_id))
    steps_before = len(store.events(run_id, kinds=["tool_result"]))
    assert before >= steps_before * STEP_S

    replies = [slow_add] * 5 + [ToolCall("", "submit", {"answer": "done"})]
    agent = ReActAgent(ScriptedModel(replies), [add], limits=Limits(steps=10_000))
    t1 = time.monotonic()
    res = AgentRun.attach(store, run_id, agent).resume()
    after_wall = time.monotonic() - t1
    assert res.status == "done"

    ok, els = monotonic(store, run_id)
    assert ok, f"working time went backwards: {els}"
    total = store.get_run(run_id)["elapsed"]
    # the work after the resume (5 sleeps) is added to the work before the kill, never restarted from 0
    assert before + 5 * STEP_S <= total <= before + after_wall + 0.05
    assert total <= before_wall + after_wall
    store.close()


def test_pause_resume_and_fork_continue_the_clock(store):
    calls = []

    def pausing(messages):
        calls.append(1)
        if len(calls) == 2:
            run.pause()  # stops at the next step boundary
        return slow_add(messages)

    run = ReActAgent(ScriptedModel(pausing), [add], limits=Limits(steps=4)).start(store, "count")
    assert run.run().status == "interrupted"
    paused = store.get_run(run.run_id)["elapsed"]
    time.sleep(0.5)  # paused: not working time
    res = run.resume()
    assert res.stop_reason == "limit:steps"
    ok, els = monotonic(store, run.run_id)
    assert ok, els
    total = store.get_run(run.run_id)["elapsed"]
    assert paused >= 2 * STEP_S and total >= paused + 2 * STEP_S

    at2 = run.elapsed_at(2)
    assert 2 * STEP_S <= at2 < total
    child = run.fork(2, agent=ReActAgent(ScriptedModel([ToolCall("", "submit", {"answer": "x"})]), [add]))
    child.run()
    cels = [e.elapsed for e in store.events(child.run_id)]
    assert cels[0] >= at2 and all(b >= a for a, b in itertools.pairwise(cels))
    assert store.get_run(child.run_id)["elapsed"] >= at2
