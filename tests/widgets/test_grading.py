"""Grading: blind, order randomised per grader, grades stored as human scores with the grader's id."""

from __future__ import annotations

import panel as pn
import pytest

from widgets.grading import GradingWidget, item_text


def _shown(w: GradingWidget) -> str:
    return "\n".join(str(p.object) for p in pn.panel(w.item_view()).select(
        lambda o: isinstance(o, (pn.pane.Markdown, pn.pane.Alert))))


def test_blind_and_randomised(study):
    store, ids = study
    a = GradingWidget(store, grader="zoe", runs=ids, seed=1)  # the sample experts graded all runs already
    assert not GradingWidget(store, grader="alice", runs=ids).queue
    b = GradingWidget(store, grader="carol", runs=ids, seed=1)
    assert sorted(x[0] for x in a.queue) == sorted(ids)
    assert [x[0] for x in a.queue] != ids and [x[0] for x in a.queue] != [x[0] for x in b.queue]
    assert [x[0] for x in GradingWidget(store, grader="carol", runs=ids, seed=1).queue] == [x[0] for x in b.queue]
    run = store.get_run(b.current[0])
    shown = _shown(b)
    prompt, output = item_text(store, run["run_id"])
    assert output and output in shown and prompt in shown
    for hidden in (run["run_id"], run["agent"], str(run["model"])):
        assert hidden not in shown


def test_grades_stored_as_human_scores(study):
    store, ids = study
    w = GradingWidget(store, grader="dana", runs=ids[:3], dimensions={"correctness": (1, 5), "clarity": (1, 5)})
    first = w.current[0]
    with pytest.raises(ValueError, match="missing: clarity"):
        w.grade({"correctness": 4})
    with pytest.raises(ValueError, match="outside 1–5"):
        w.grade({"correctness": 9, "clarity": 1})
    w.grade({"correctness": 4, "clarity": 2})
    sf = store.scores_frame()
    mine = sf[sf["source"] == "dana"]
    assert set(mine["provenance"]) == {"human"} and set(mine["run_id"]) == {first}
    assert dict(zip(mine["dimension"], mine["value"], strict=True)) == {"correctness": 4.0, "clarity": 2.0}
    assert w.position == 1
    # graded items are not asked again
    assert first not in [x[0] for x in GradingWidget(store, grader="dana", runs=ids[:3]).queue]


def test_pairwise_and_no_grader(study):
    store, ids = study
    same_task = [r for r in ids if store.get_run(r)["task"] == "sample/t00"][:3]
    w = GradingWidget(store, runs=same_task, mode="pairwise")
    assert len(w.queue) == 3
    with pytest.raises(ValueError, match="grader id"):
        w.grade("left")
    w.grader = "erin"
    left, right = w.current
    w.grade("left")
    sf = store.scores_frame()
    pref = sf[(sf["scorer"] == "preference") & (sf["source"] == "erin")]
    assert dict(zip(pref["run_id"], pref["value"], strict=True)) == {left: 1.0, right: 0.0}
    assert "Nothing to grade" in _shown(GradingWidget(store, grader="x"))


def test_a_grade_lands_on_the_item_shown_after_the_queue_changes(study):
    store, ids = study
    w = GradingWidget(store, grader="fay", runs=ids[:6], dimensions={"correctness": (1, 5)})
    shown = w.current
    w.grader = "gus"  # a new order for another grader; the item on screen stays first
    assert w.current == shown and w.queue_version == 2
    w.runs = ids[6:12]  # the selection changed: the shown item is gone, the button of the old view refuses
    with pytest.raises(ValueError, match="queue changed"):
        w.grade({"correctness": 3}, item=shown)
    w._submit({"correctness": 3}, shown)
    assert "queue changed" in w.message and store.scores_frame().query("source == 'gus'").empty
    w.grade({"correctness": 3}, item=w.current)
    assert w.message == ""


def test_pairwise_stored_overall_and_runs_without_output_left_out(study):
    store, ids = study
    silent = store.create_run({"task": "sample/t00", "agent": "react"}, status="done")
    same_task = [r for r in ids if store.get_run(r)["task"] == "sample/t00"][:2] + [silent]
    w = GradingWidget(store, grader="hal", runs=same_task, mode="pairwise",
                      dimensions={"correctness": (1, 5), "clarity": (1, 5)})
    assert w.skipped == 1 and len(w.queue) == 1 and silent not in w.queue[0]
    w.grade("tie")
    pref = store.scores_frame().query("source == 'hal'")
    assert set(pref["dimension"]) == {"overall"} and set(pref["value"]) == {0.5}
    w.mode = "rubric"
    with pytest.raises(ValueError, match="rubric mode"):
        w.grade("left")  # no raw Python objects in the message either


def test_chosen_grades_survive_an_error(study):
    store, ids = study
    w = GradingWidget(store, grader="ida", runs=ids[:3], dimensions={"correctness": (1, 5), "clarity": (1, 5)})
    view = w.item_view()
    w._choices["correctness"].value = 4
    w._submit({d: v for d, v in w._chosen.items() if v is not None}, w.current)
    assert "missing: clarity" in w.message and w._chosen == {"correctness": 4}
    assert w.item_view() is not view and w._choices["correctness"].value == 4  # a redraw keeps the choice
    w._choices["clarity"].value = 2
    w._submit(dict(w._chosen), w.current)
    assert w.message == "" and w.done == 1
