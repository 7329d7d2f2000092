"""Experiments and the runner: combinations, concurrency, failures, skip-done, resume-interrupted, `lab run`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lab.experiment import Experiment, ExperimentError
from lab.models import ScriptedModel
from lab.runner import Runner

LAB = str(Path(sys.executable).parent / "lab")
GOLD = {"dev-0001": "Ceftriaxone", "dev-0002": "Cyclic vomiting syndrome"}


def medqa_model(name, *, interrupt_once=None):
    """A scripted DERA pair that answers the MedQA-open CI questions (right for dev-0001/2 only)."""
    state = {"interrupted": False}

    def reply(messages):
        system, user = messages[0].content, messages[1].content
        gold = next((a for tid, a in GOLD.items() if tid in _TEXT and _TEXT[tid] in user), "Unknown")
        if system.startswith("You are the Researcher"):
            if interrupt_once and not state["interrupted"]:
                state["interrupted"] = True
                raise KeyboardInterrupt
            return {"json": {"message": "check the key findings", "done": False}}
        if "answering" in system:
            return {"json": {"answer": "Penicillin", "explanation": "first guess"}}
        return {"json": {"message": "revised", "answer": gold, "final": True}}

    return ScriptedModel(reply, name=name)


_TEXT: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _question_texts():
    from lab.tasks import load_suite

    for t in load_suite("medqa-open", subset="ci"):
        _TEXT[t.id] = t.inputs["question"][:60]


EXP = {"name": "t", "tasks": [{"suite": "medqa-open", "subset": "ci"}], "loops": ["dera"],
       "models": ["fake", "broken"], "seeds": [0, 1], "concurrency": 3,
       "judge_fallback": False}


def loader(name):
    if name == "broken":
        from lab.models import ModelNotFound

        raise ModelNotFound("no model called broken")
    return medqa_model(name)


def test_experiment_shorthands_and_errors(tmp_path):
    exp = Experiment.from_dict({"name": "x", "tasks": ["medqa-open/dev-0001", "./tasks.yaml"], "loops": ["react"],
                                "models": ["m"]})
    assert exp.tasks[0].suite == "medqa-open" and exp.tasks[0].ids == ["dev-0001"]
    assert exp.tasks[1].path == "./tasks.yaml" and exp.loops[0].loop == "react" and exp.seeds == [0]
    with pytest.raises(ExperimentError, match="field 'loops.0.loop'"):
        Experiment.from_dict({**EXP, "loops": ["dream"]})
    with pytest.raises(ExperimentError, match="field 'concurrency'"):
        Experiment.from_dict({**EXP, "concurrency": 0})
    (tmp_path / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(ExperimentError, match="invalid YAML"):
        Experiment.from_yaml(tmp_path / "bad.yaml")
    with pytest.raises(ExperimentError, match="not found"):
        Experiment.from_dict({**EXP, "tasks": [{"suite": "medqa-open", "ids": ["nope"]}]}).combos()


def test_batch_runs_scores_continues_past_failures_and_skips_done(store):
    exp = Experiment.from_dict(EXP)
    batch = Runner(store, progress=False, model_loader=loader).run(exp)
    assert len(batch.outcomes) == 12
    assert batch.count("done") == 6 and batch.count("failed") == 6
    by = {(o.task, o.model, o.seed): o for o in batch.outcomes}
    ok = by[("medqa-open/dev-0001", "fake", 1)]
    assert ok.answer == "Ceftriaxone" and ok.scores["normalized_match"] == 1.0
    assert by[("medqa-open/test-0001", "fake", 0)].scores["normalized_match"] == 0.0
    assert "no model called broken" in by[("medqa-open/dev-0001", "broken", 0)].error
    assert store.get_run(ok.run_id)["batch_id"] == "exp:t"
    assert store.get_run(ok.run_id)["seed"] == 1
    frame = batch.frame()
    assert frame["score.normalized_match"].sum() == 4.0  # 2 right questions × 2 seeds
    # a rerun skips the six finished combinations and retries only the failed ones
    again = Runner(store, progress=False, model_loader=loader).run(exp)
    assert again.count("skipped") == 6 and again.count("failed") == 6
    assert {o.run_id for o in again.outcomes if o.status == "skipped"} == \
        {o.run_id for o in batch.outcomes if o.status == "done"}
    assert len(store.list_runs(status="done")) == 6


def test_interrupted_batch_resumes_from_checkpoint(store):
    exp = Experiment.from_dict({**EXP, "models": ["fake"], "seeds": [0], "concurrency": 1,
                                "tasks": ["medqa-open/dev-0001"]})
    first = Runner(store, progress=False, model_loader=lambda n: medqa_model(n, interrupt_once=True)).run(exp)
    assert first.outcomes[0].status == "interrupted"
    run_id = first.outcomes[0].run_id
    second = Runner(store, progress=False, model_loader=loader).run(exp)
    o = second.outcomes[0]
    assert (o.status, o.run_id, o.answer) == ("done", run_id, "Ceftriaxone")  # same run, continued
    agents = [e.agent for e in store.events(run_id, kinds=["model_call"])]
    assert agents == ["decider", "researcher", "decider"]  # the draft was not redone


def test_lab_run_cli(tmp_path):
    script = tmp_path / "script.yaml"
    script.write_text(json.dumps({"cycle": True, "replies": [
        {"json": {"answer": "Ceftriaxone", "explanation": "x"}},
        {"json": {"message": "fine", "done": True}},
        {"json": {"message": "ok", "answer": "Ceftriaxone", "final": True}}]}))
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"name: cli\ntasks: [medqa-open/dev-0001]\nloops: [dera]\nmodels: ['scripted:{script}']\n")
    store = tmp_path / "traces.db"
    cmd = [LAB, "run", str(exp), "--store", str(store), "--no-progress"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "done" in p.stdout and "normalized_match=1" in p.stdout
    p2 = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p2.returncode == 0 and "skipped=1" in p2.stdout
    bad = subprocess.run([LAB, "run", str(tmp_path / "missing.yaml")], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no experiment file" in bad.stderr
