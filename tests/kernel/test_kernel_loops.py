"""The repo-setup loop on the kernel workbench (SUPER's way: cells instead of shell calls) through the runner
to SUPER's three scores, and the ReAct loop offering the kernel as a tool. Scripted models, real Docker."""

from __future__ import annotations

import json

import pytest

from lab.agents import ReActAgent, RepoSetupAgent
from lab.experiment import Experiment
from lab.models import ScriptedModel, ToolCall
from lab.runner import Runner

CELLS = [
    "%cd /work/tinyclf\n!pip install -r requirements.txt",     # fails: tabulate 0.7.5 is not in the wheelhouse
    "!sed -i 's/tabulate==0.7.5/tabulate>=0.9/' requirements.txt && pip install -r requirements.txt",
    "!python train.py --alpha 0.5",
    "import json\nmetrics = json.load(open('out/metrics.json'))",
    "print(json.dumps({'accuracy': metrics['test_accuracy']}))",  # state from the cells before
]


def notebook_solver() -> ScriptedModel:
    """Runs the cells, then submits what the last cell printed (nothing hard-coded)."""
    cells = iter(CELLS)

    def reply(messages):
        try:
            return ToolCall("", "kernel", {"code": next(cells)})
        except StopIteration:
            printed = next(m.content for m in reversed(messages) if m.role == "tool")
            return ToolCall("", "submit", {"answer": json.dumps(json.loads(printed))})

    return ScriptedModel(reply)


@pytest.mark.docker
def test_repo_setup_on_the_kernel_workbench_through_the_runner_to_a_score(store, kernel_image):
    exp = Experiment.model_validate({"name": "nb", "tasks": ["repo-setup/tinyclf-pinned-version"],
                                     "loops": [{"loop": "repo_setup", "options": {"workbench": "kernel"}}],
                                     "models": ["notebook"], "concurrency": 1})
    (o,) = Runner(store, progress=False, model_loader=lambda _name: notebook_solver()).run(exp).outcomes
    assert o.status == "done", (o.error, [e.attrs.get("content")
                                          for e in store.events(o.run_id, kinds=["tool_result"])])
    assert {k: o.scores[k] for k in ("output_match", "landmarks", "entrypoint")} == {
        "output_match": 1.0, "landmarks": 1.0, "entrypoint": 1.0}
    calls = store.events(o.run_id, kinds=["tool_call"])
    results = store.events(o.run_id, kinds=["tool_result"])
    assert [c.attrs["gen_ai.tool.name"] for c in calls] == ["kernel"] * len(CELLS) + ["submit"]
    assert [c.attrs["lab.arguments"]["code"] for c in calls[:-1]] == CELLS
    cells = [r.attrs["lab.kernel.outputs"] for r in results[:-1]]
    assert [c["code"] for c in cells] == CELLS and [c["execution_count"] for c in cells] == [1, 2, 3, 4, 5]
    assert "Successfully installed tabulate" in cells[1]["stdout"]


def test_unknown_workbench_is_refused():
    with pytest.raises(TypeError, match="workbench must be one of"):
        RepoSetupAgent(ScriptedModel([]), workbench="emacs")


def test_react_offers_the_kernel_tool(store, kbox):
    from lab.tools.registry import get_tools

    model = ScriptedModel([ToolCall("", "kernel", {"code": "z = 6 * 7"}), ToolCall("", "kernel", {"code": "z"}),
                           ToolCall("", "submit", {"answer": "done"})])
    agent = ReActAgent(model, get_tools(["kernel"]))
    res = agent.start(store, "compute", sandbox=kbox).run()
    assert res.status == "done"
    (first, second, _) = store.events(res.run_id, kinds=["tool_result"])
    assert second.attrs["content"].strip() == "42" and second.attrs["lab.kernel.outputs"]["result"] == "42"


def test_a_fork_restores_files_not_kernel_state_and_says_so(store, fresh_box):
    """ReAct with snapshots: the fork from step 1 gets step 1's files back, a fresh kernel, and a note."""
    from lab.tools.registry import get_tools

    box = fresh_box()
    first = ScriptedModel([ToolCall("", "kernel", {"code": "a = 1\nopen('f.txt', 'w').write('x')"}),
                           ToolCall("", "kernel", {"code": "open('g.txt', 'w').write('later'); a"}),
                           ToolCall("", "submit", {"answer": "done"})])
    agent = ReActAgent(first, get_tools(["kernel"]), snapshot_steps=True)
    run = agent.start(store, "work", sandbox=box)
    assert run.run().status == "done"
    probe = "import os\nos.path.exists('f.txt'), os.path.exists('g.txt'), 'a' in dir()"
    check = ScriptedModel([ToolCall("", "kernel", {"code": probe}),
                           ToolCall("", "submit", {"answer": "checked"})])
    child = run.fork(1, agent=ReActAgent(check, get_tools(["kernel"]), snapshot_steps=True))
    assert child.run().status == "done"
    (obs,) = [e.attrs["content"] for e in store.events(child.run_id, kinds=["tool_result"])
              if e.attrs["gen_ai.tool.name"] == "kernel"]
    assert "kernel state is not" in obs and obs.strip().endswith("(True, False, False)")
