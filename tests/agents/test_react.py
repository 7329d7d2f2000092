"""The ReAct loop with a scripted model: transitions, invalid replies, tool errors, limits, approvals,
pause/resume, Ctrl-C, a dying sandbox, forks."""

from __future__ import annotations

import pytest

from lab.agents import AWAITING_APPROVAL, AgentError, AgentRun, Limits, ReActAgent
from lab.models import ScriptedModel, ToolCall
from lab.sandbox import SandboxUnavailable
from lab.tools import tool


def call(tool_name, **args):
    return ToolCall("", tool_name, args)


def kinds(store, run_id):
    return [e.kind for e in store.events(run_id)]


def test_exact_transitions_and_events(store, tools):
    model = ScriptedModel([call("add", a=2, b=3), call("submit", answer="5")])
    run = ReActAgent(model, tools).start(store, "What is 2+3?", task="t/1", seed=7)
    res = run.run()
    assert (res.status, res.answer, res.stop_reason, res.steps) == ("done", "5", "submitted", 2)
    assert kinds(store, res.run_id) == [
        "run_started", "span", "model_call", "tool_call", "tool_result",
        "span", "model_call", "tool_call", "tool_result", "run_finished"]
    evs = store.events(res.run_id)
    # tool events hang from their step's span; the model saw the tool's result
    assert evs[3].parent_id == evs[1].span_id and evs[4].attrs["content"] == "5"
    assert model.requests[1][-1].role == "tool" and model.requests[1][-1].content == "5"
    assert model.requests[0][0].role == "system"
    row = store.get_run(res.run_id)
    assert (row["status"], row["task"], row["agent"], row["seed"]) == ("done", "t/1", "react", 7)
    assert res.tokens == sum(e.attrs["gen_ai.usage.input_tokens"] + e.attrs["gen_ai.usage.output_tokens"]
                             for e in evs if e.kind == "model_call")


def test_invalid_replies_become_observations_then_cap(store, tools):
    model = ScriptedModel(["just text", call("nope", x=1), call("add", a="x", b=1), call("add", a=1, b=1)])
    res = ReActAgent(model, tools, limits=Limits(invalid_replies=3)).start(store, "q").run()
    assert (res.status, res.stop_reason, res.answer) == ("done", "invalid_replies", None)
    notes = [m.content for m in model.requests[-1] if m.role == "user"][1:]
    assert len(notes) == 2 and "calls no tool" in notes[0] and "no tool named 'nope'" in notes[1]
    lim = store.events(res.run_id, kinds=["limit"])
    assert lim[0].attrs["lab.limit.name"] == "invalid_replies"
    assert model.remaining == 1  # stopped after the third invalid reply


def test_valid_call_resets_invalid_count(store, tools):
    model = ScriptedModel(["text", call("add", a=1, b=1), "text", call("submit", answer="2")])
    res = ReActAgent(model, tools, limits=Limits(invalid_replies=2)).start(store, "q").run()
    assert (res.stop_reason, res.answer) == ("submitted", "2")


def test_tool_errors_are_observations(store, tools):
    model = ScriptedModel([call("lookup", name="unobtainium"), call("lookup", name="boom"),
                           call("submit", answer="?")])
    res = ReActAgent(model, tools).start(store, "q").run()
    assert res.status == "done"
    results = store.events(res.run_id, kinds=["tool_result"])
    assert results[0].attrs["content"] == "Error: no such compound: unobtainium"
    assert results[0].attrs["error.type"] == "ToolError"
    assert results[1].attrs["content"] == "Error: RuntimeError: database connection lost"
    errors = store.events(res.run_id, kinds=["error"])
    assert errors[0].attrs["error.where"] == "tool:lookup"


@pytest.mark.parametrize("limits,reason", [(Limits(steps=2), "limit:steps"), (Limits(tokens=1), "limit:tokens"),
                                           (Limits(wall_time_s=0.0), "limit:wall_time_s"),
                                           (Limits(working_time_s=0.0), "limit:working_time_s")])
def test_limits_stop_and_are_recorded(store, tools, limits, reason):
    model = ScriptedModel([call("add", a=1, b=1)], cycle=True)
    res = ReActAgent(model, tools, limits=limits).start(store, "q").run()
    assert (res.status, res.stop_reason) == ("done", reason)
    lim = store.events(res.run_id, kinds=["limit"])
    assert len(lim) == 1 and lim[0].attrs["lab.limit.name"] == reason.split(":")[1]
    if reason == "limit:steps":
        assert res.steps == 2 and len(model.requests) == 2


def test_sandbox_dies_run_fails_events_kept(store):
    @tool
    def probe(x: int) -> str:
        """Probe the sandbox.

        Args:
            x: Anything.
        """
        raise SandboxUnavailable("container was OOM-killed")

    model = ScriptedModel([call("probe", x=1)])
    res = ReActAgent(model, [probe]).start(store, "q").run()
    assert (res.status, res.stop_reason) == ("failed", "sandbox_unavailable")
    row = store.get_run(res.run_id)
    assert row["status"] == "failed" and "OOM" in row["error"]
    assert kinds(store, res.run_id)[:4] == ["run_started", "span", "model_call", "tool_call"]
    assert store.events(res.run_id, kinds=["error"])[0].attrs["error.type"] == "SandboxUnavailable"


def test_ctrl_c_interrupts_then_resume(store, tools):
    state = {"n": 0}

    def reply(messages):
        state["n"] += 1
        if state["n"] == 2:
            raise KeyboardInterrupt
        return call("submit", answer="done") if state["n"] > 2 else call("add", a=1, b=2)

    run = ReActAgent(ScriptedModel(reply), tools).start(store, "q")
    res = run.run()
    assert (res.status, res.stop_reason) == ("interrupted", "keyboard_interrupt")
    assert store.get_run(run.run_id)["status"] == "interrupted"
    n_events = store.count_events(run.run_id)
    res = run.resume()
    assert (res.status, res.answer, res.steps) == ("done", "done", 2)
    assert store.count_events(run.run_id) > n_events  # appended to the same run
    assert kinds(store, run.run_id).count("run_finished") == 2


def test_pause_at_step_boundary_and_resume(store, tools):
    holder = {}

    def reply(messages):
        if len(messages) == 2:  # first turn: ask for a pause, which lands before the next step
            holder["run"].pause()
            return call("add", a=1, b=1)
        return call("submit", answer="2")

    run = holder["run"] = ReActAgent(ScriptedModel(reply), tools).start(store, "q")
    res = run.run()
    assert (res.status, res.stop_reason, res.steps) == ("interrupted", "paused", 1)
    assert run.state["messages"][-1]["role"] == "tool"  # step 1 completed before pausing
    res = run.resume()
    assert (res.status, res.answer, res.steps) == ("done", "2", 2)


def test_resume_after_restart_uses_checkpoint(store, tools):
    """A new process (here: new store, model and agent objects) continues from the last checkpoint."""
    def first(messages):
        if len(messages) > 2:
            raise KeyboardInterrupt  # the kernel goes away during step 2
        return call("add", a=20, b=22)

    run = ReActAgent(ScriptedModel(first), tools).start(store, "q")
    assert run.run().status == "interrupted"
    from lab.traces import TraceStore

    store2 = TraceStore(store.path)
    model2 = ScriptedModel([call("submit", answer="42")])
    again = AgentRun.attach(store2, run.run_id, ReActAgent(model2, tools))
    res = again.resume()
    assert (res.status, res.answer) == ("done", "42")
    assert model2.requests[0][-1].content == "42"  # the tool result from before the restart


def test_approval_approve_edit_reject(store, tools):
    model = ScriptedModel([call("add", a=1, b=1), call("add", a=2, b=2), call("lookup", name="x"),
                           call("submit", answer="ok")])
    run = ReActAgent(model, tools, approval=True).start(store, "q")
    res = run.run()
    assert res.status == AWAITING_APPROVAL
    assert res.pending == [{"tool": "add", "arguments": {"a": 1, "b": 1}, "id": "call_0_0", "step": 1}]
    assert store.get_run(run.run_id)["status"] == "running"
    assert run.approve().status == AWAITING_APPROVAL
    assert run.edit({"a": 5, "b": 5}).status == AWAITING_APPROVAL
    res = run.reject("not allowed")
    assert (res.status, res.answer) == ("done", "ok")  # submit needs no approval
    results = [e.attrs["content"] for e in store.events(run.run_id, kinds=["tool_result"])]
    assert results == ["2", "10", "The reviewer rejected this call: not allowed", "ok"]
    actions = [e.attrs["lab.decision"] for e in store.events(run.run_id, kinds=["human_action"])]
    assert actions == ["approve", "edit", "reject"]


def test_approval_only_for_named_tools_and_auto_approver(store, tools):
    seen = []
    model = ScriptedModel([call("add", a=1, b=1), call("lookup", name="x"), call("submit", answer="ok")])
    agent = ReActAgent(model, tools, approval=["lookup"])
    res = agent.start(store, "q", approver=lambda req: seen.append(req["tool"]) or "approve").run()
    assert res.status == "done" and seen == ["lookup"]


def test_approve_without_pending_is_an_error(store, tools):
    run = ReActAgent(ScriptedModel([call("submit", answer="a")]), tools).start(store, "q")
    run.run()
    with pytest.raises(AgentError, match="no tool call awaiting approval"):
        run.approve()


def test_fork_from_step_with_changed_tool_result(store, tools):
    model = ScriptedModel([call("lookup", name="ethanol"), call("add", a=1, b=1), call("submit", answer="A")])
    parent = ReActAgent(model, tools).start(store, "q")
    assert parent.run().answer == "A"
    assert parent.steps() == [0, 1, 2, 3]
    model2 = ScriptedModel([call("submit", answer="B")], name="other")
    child = parent.fork(1, agent=ReActAgent(model2, tools), tool_result="ethanol: C2H5OH")
    res = child.run()
    assert (res.status, res.answer, res.steps) == ("done", "B", 2)
    seen = model2.requests[0]
    assert seen[-1].content == "ethanol: C2H5OH" and len(seen) == 4  # system, user, assistant, tool
    row = store.get_run(child.run_id)
    assert (row["parent_run_id"], row["fork_step"], row["model"]) == (parent.run_id, 1, "other")
    assert store.get_run(parent.run_id)["status"] == "done"  # the parent is untouched
    with pytest.raises(AgentError, match="no saved state at step 9"):
        parent.fork(9)


def test_fork_restores_sandbox_snapshot(store, local_sandbox):
    from lab.tools import shell

    model = ScriptedModel([call("shell", command="echo one > f.txt"), call("shell", command="echo two > f.txt"),
                           call("submit", answer="x")])
    parent = ReActAgent(model, [shell]).start(store, "q", sandbox=local_sandbox)
    assert parent.run().status == "done"
    assert local_sandbox.exec("cat f.txt").stdout == "two\n"
    child = parent.fork(1, agent=ReActAgent(ScriptedModel([call("shell", command="cat f.txt"),
                                                           call("submit", answer="y")]), [shell]))
    res = child.run()
    assert res.answer == "y"
    assert store.events(child.run_id, kinds=["tool_result"])[0].attrs["content"] == "one\n"


KILLED_CHILD = """
import os, signal, sys
from lab.agents import ReActAgent
from lab.models import ScriptedModel, ToolCall
from lab.tools import tool
from lab.traces import TraceStore

@tool
def add(a: int, b: int) -> int:
    '''Add.

    Args:
        a: First.
        b: Second.
    '''
    return a + b

def reply(messages):
    if len(messages) > 2:
        os.kill(os.getpid(), signal.SIGKILL)  # the kernel dies in the middle of step 2
    return ToolCall("", "add", {"a": 40, "b": 2})

run = ReActAgent(ScriptedModel(reply), [add]).start(TraceStore(sys.argv[1]), "q")
print(run.run_id, flush=True)
run.run()
"""


def test_resume_after_process_killed(store, tools, tmp_path):
    import subprocess
    import sys

    script = tmp_path / "child.py"
    script.write_text(KILLED_CHILD)
    p = subprocess.run([sys.executable, str(script), str(store.path)], capture_output=True, text=True, timeout=120)
    assert p.returncode == -9, p.stderr
    run_id = p.stdout.strip()
    from lab.traces import TraceStore

    store2 = TraceStore(store.path)  # opening recovers the dead writer's run as interrupted
    assert store2.get_run(run_id)["status"] == "interrupted"
    model = ScriptedModel([call("submit", answer="42")])
    res = AgentRun.attach(store2, run_id, ReActAgent(model, tools)).resume()
    assert (res.status, res.answer, res.steps) == ("done", "42", 2)
    assert model.requests[0][-1].content == "42"
