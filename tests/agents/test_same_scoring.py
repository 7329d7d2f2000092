"""Humans and agents are scored the same way: one pipeline, keyed by the task, for every run kind."""

from __future__ import annotations

import io
import json

import pytest

from lab.agents.human import HumanSession
from lab.experiment import Experiment
from lab.models import ScriptedModel, ToolCall
from lab.runner import Runner
from lab.tasks import load_tasks
from lab.tasks.environment import open_task_sandbox

TASK = r"""
id: train-acc
kind: repo
instructions: 'Run train.py (it prints the accuracy) and submit {"accuracy": A}.'
sandbox: {image: base, workdir: /work, setup: ["printf 'print(\"accuracy 0.75\")\\n' > train.py"]}
scoring: {scorer: json_match, intermediate: true}
answer: {"accuracy": 0.75}
landmarks: ['accuracy 0\.75', 'never printed']
entrypoint: train.py
"""
COMMANDS = ["python3 train.py 2>&1 | tail -1", "ls"]
EARLY, FINAL = {"accuracy": 0.5}, {"accuracy": 0.75}


def score_set(store, run_id):
    rows = store.query("SELECT scorer, dimension, value, final FROM scores WHERE run_id=? ORDER BY seq", (run_id,))
    return sorted((s, d, round(v, 9) if v is not None else None, bool(f)) for s, d, v, f in rows)


@pytest.fixture
def task_file(tmp_path):
    p = tmp_path / "task.yaml"
    p.write_text(TASK)
    return p


def test_scripted_human_and_agent_get_the_same_scores(store, task_file):
    (task,) = load_tasks(task_file)
    assert "score" in task.tools  # a task with intermediate scores offers agents the `score` tool

    lines = [*COMMANDS, f"score {json.dumps(EARLY)}", f"submit {json.dumps(FINAL)}"]
    screen = io.StringIO()
    session = HumanSession(store, task, expert="alice",
                           sandbox=lambda rec: open_task_sandbox(task, rec, backend="local"),
                           stdin=io.StringIO("\n".join(lines) + "\n"), stdout=screen)
    try:
        human = session.run()
    finally:
        session.sandbox.close()
    assert human.status == "done", screen.getvalue()[-2000:]

    calls = [ToolCall("", "shell", {"command": c}) for c in COMMANDS]
    calls += [ToolCall("", "score", {"answer": json.dumps(EARLY)}),
              ToolCall("", "submit", {"answer": json.dumps(FINAL)})]
    exp = Experiment.model_validate({"name": "same", "tasks": [str(task_file)], "loops": ["repo_setup"],
                                     "models": ["expert"], "concurrency": 1, "sandbox_backend": "local"})
    (o,) = Runner(store, progress=False, model_loader=lambda _n: ScriptedModel(list(calls))).run(exp).outcomes
    assert o.status == "done", o.error
    shown = store.events(o.run_id, kinds=["tool_result"])[2].attrs["content"]
    assert shown == "score: output_match=0.0" and "score: output_match=0.0" in screen.getvalue()

    want = sorted([("output_match", "overall", 0.0, False), ("output_match", "overall", 1.0, True),
                   ("landmarks", "overall", 0.5, True), ("entrypoint", "overall", 1.0, True)])
    assert score_set(store, human.run_id) == want
    assert score_set(store, o.run_id) == want
    # intermediate scores are the same event kind for both, at the run's working time
    for rid in (human.run_id, o.run_id):
        (ev,) = [e for e in store.events(rid, kinds=["score"]) if not e.attrs["lab.score.final"]]
        assert ev.elapsed > 0
