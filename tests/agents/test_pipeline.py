"""The run pipeline below the runner and the executors: a picklable run context, outcomes, and `lab run`'s
exit status when runs fail or a scorer raises."""

from __future__ import annotations

import pickle
import sys

import pytest

from lab.experiment import Experiment
from lab.models import ScriptedModel, ToolCall
from lab.pipeline import Outcome, RunContext, StopSignal, run_combo
from lab.scoring import SCORERS, register_scorer

EXP = {"name": "pipe", "tasks": ["medqa-open/dev-0001"], "loops": ["react"], "models": ["m"], "task_scoring": False}


def answer(name):
    return ScriptedModel([ToolCall("", "submit", {"answer": "Ceftriaxone"})], name=name)


def test_run_context_pickles_for_a_worker_with_a_fresh_stop_signal(store):
    from lab.executors.remote_store import RemoteStore

    ctx = RunContext(Experiment.from_dict(EXP), RemoteStore(sink=None, path=str(store.path)), answer)
    ctx.stop.set()
    copy = pickle.loads(pickle.dumps(ctx))
    assert copy.experiment == ctx.experiment and copy.store.path == store.path and copy.model_loader is answer
    assert isinstance(copy.stop, StopSignal) and not copy.stop.is_set()


def test_run_combo_runs_one_combination_and_honours_the_stop_signal(store):
    exp = Experiment.from_dict(EXP)
    (combo,) = exp.combos()
    ctx = RunContext(exp, store, answer)
    out = run_combo(ctx, combo, combo.key(exp))
    assert out == Outcome.of(combo, combo.key(exp), "done", out.run_id, stop_reason="submitted",
                             answer="Ceftriaxone")
    assert store.get_run(out.run_id)["config"]["combo"] == combo.key(exp) and not out.errored
    ctx.stop.set()
    assert run_combo(ctx, combo, combo.key(exp)).status == "interrupted"


@pytest.fixture
def exploding_scorer():
    @register_scorer("explodes")
    class Explodes:
        name = "explodes"

        def __call__(self, output, target=None, **context):
            raise RuntimeError("scorer bug")

    yield
    SCORERS.remove("explodes")


def test_lab_run_exits_1_when_a_scorer_raises(exploding_scorer, tmp_path, capsys, monkeypatch):
    from lab.cli.main import main

    (tmp_path / "replies.yaml").write_text(
        "- tool_calls: [{name: submit, arguments: {answer: Ceftriaxone}}]\n")
    exp = tmp_path / "exp.yaml"
    exp.write_text("name: boom\ntasks: [medqa-open/dev-0001]\nloops: [react]\n"
                   f"models: ['scripted:{tmp_path / 'replies.yaml'}']\n"
                   "task_scoring: false\nscorers: [{scorer: explodes}]\n")
    monkeypatch.setattr(sys, "argv", ["lab", "run", str(exp), "--store", str(tmp_path / "s.db"), "--no-progress"])
    with pytest.raises(SystemExit) as e:
        main()
    out, err = capsys.readouterr()
    assert e.value.code == 1
    assert out.startswith("done ") and "done=1" in out
    assert err.strip() == ("error: 1 of 1 runs failed or errored (0 failed, 1 with a scorer error); "
                           "see `lab runs show RUN_ID`")


@pytest.mark.parametrize("budgets", [None, {"steps": 2}, {"tokens": 500, "working_time_s": 60.0}])
def test_combination_keys_are_those_of_earlier_versions(budgets):
    """Stores written before budgets became :class:`Limits` keep their keys, so a rerun still skips done runs."""
    import hashlib
    import json

    exp = Experiment.from_dict({**EXP, **({"budgets": budgets} if budgets else {})})
    (combo,) = exp.combos()
    old_budgets = {"steps": None, "tokens": None, "wall_time_s": None, "working_time_s": None, **(budgets or {})}
    payload = {"experiment": exp.name, "task": combo.task.key, "loop": combo.loop.model_dump(), "model": "m",
               "seed": 0, "budgets": old_budgets, "sampling": exp.sampling.model_dump()}
    assert combo.key(exp) == hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def test_loop_limits_are_defaults_then_task_then_experiment():
    from lab.limits import Limits
    from lab.pipeline import build_agent

    exp = Experiment.from_dict({**EXP, "budgets": {"tokens": 900}})
    (combo,) = exp.combos()
    task = combo.task.model_copy(update={"budgets": Limits(steps=7, tokens=100, working_time_s=5.0)})
    react = build_agent(combo.loop, answer("m"), task, budgets=exp.budgets)
    assert (react.limits.steps, react.limits.tokens, react.limits.working_time_s) == (7, 900, 5.0)
    assert build_agent(combo.loop, answer("m"), combo.task.model_copy(update={"budgets": Limits()})).limits.steps == 30
    dera = Experiment.from_dict({**EXP, "loops": [{"loop": "dera", "options": {"rounds": 2}}]})
    assert build_agent(dera.loops[0], answer("m"), task).limits.steps == 2  # rounds, not the task's steps
    over = Experiment.from_dict({**EXP, "budgets": {"steps": 4}})
    assert build_agent(dera.loops[0], answer("m"), task, budgets=over.budgets).limits.steps == 4
