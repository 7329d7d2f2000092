"""The SUPER repository set-up agent: observation policy, sandbox tools, JSON submission (scripted model,
real local sandbox)."""

from __future__ import annotations

from lab.agents import RepoSetupAgent, SuperObservations
from lab.models import ScriptedModel, ToolCall
from lab.tools import ToolContext, ToolError, edit_file, python, shell


def call(tool_name, **args):
    return ToolCall("", tool_name, args)


def test_super_observation_policy():
    msgs = [{"role": "user", "content": "task"},
            {"role": "assistant", "content": "", "tool_calls": []}, {"role": "tool", "content": "a" * 50 + "OLD-END"},
            {"role": "assistant", "content": "", "tool_calls": []}, {"role": "tool", "content": "b" * 30 + "NEW-END"}]
    shown = SuperObservations(last_cap=20, older_cap=10)(msgs)
    assert shown[2]["content"] == "[... 47 characters cut ...]\naaaOLD-END"  # older step: its tail
    assert shown[4]["content"].endswith("bbbbbbbbbbbbbNEW-END") and "[... 17 characters cut" in shown[4]["content"]
    assert msgs[2]["content"].endswith("OLD-END") and len(msgs[2]["content"]) == 57  # the state is not changed
    full = SuperObservations(last_cap=100, older_cap=100)(msgs)
    assert full == msgs


def test_sandbox_tools(local_sandbox):
    ctx = ToolContext(sandbox=local_sandbox)
    assert shell({"command": "mkdir -p repo && cd repo && echo hi > a.txt"}, ctx) == ""
    assert ctx.state["cwd"].endswith("/repo")
    assert shell({"command": "cat a.txt; exit 3"}, ctx) == "hi\n\n[exit code 3]"
    assert edit_file({"path": "a.txt", "old": "hi", "new": "hello"}, ctx) .startswith("edited")
    assert python({"code": "print(open('a.txt').read().upper())"}, ctx) == "HELLO\n\n"
    try:
        edit_file({"path": "a.txt", "old": "absent", "new": "x"}, ctx)
        raise AssertionError("expected a ToolError")
    except ToolError as e:
        assert "not found" in str(e)


def test_repo_setup_run_submits_json_and_truncates(store, local_sandbox):
    model = ScriptedModel([
        call("shell", command="mkdir proj && cd proj && seq 1 3000"),
        call("edit_file", path="train.py", old="", new="print('{\"acc\": 0.75}')\n"),
        call("python", code="import subprocess; subprocess.run(['python3', 'train.py'])"),
        call("submit", answer='{"acc": 0.75}'),
    ])
    agent = RepoSetupAgent(model, observation=SuperObservations(last_cap=200, older_cap=40))
    res = agent.start(store, "Run train.py and report accuracy", sandbox=local_sandbox).run()
    assert (res.status, res.answer, res.stop_reason) == ("done", {"acc": 0.75}, "submitted")
    # step 2 sees step 1's long output cut to its last 200 characters; step 4 sees only its last 40
    seen2 = model.requests[1][-1].content
    assert seen2.startswith("[... ") and seen2.endswith("2999\n3000\n")
    first_obs_at_4 = [m for m in model.requests[3] if m.role == "tool"][0].content
    assert len(first_obs_at_4) < 80 and first_obs_at_4.endswith("3000\n")
    assert model.requests[3][-1].content == '{"acc": 0.75}\n'
    assert local_sandbox.exec("cat proj/train.py").stdout.startswith("print(")
    snaps = store.events(res.run_id, kinds=["sandbox_exec"])
    assert sum(e.attrs.get("lab.sandbox.op") == "snapshot" for e in snaps) == 4  # start + after each tool step
    assert store.get_run(res.run_id)["agent"] == "repo_setup"
