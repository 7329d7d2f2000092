"""Human grades into the store; re-scoring stored runs."""

from __future__ import annotations

import json

import pytest

from lab.scoring import ScoringError, get_scorer, import_grades, rescore, run_output
from lab.stats import agreement, ratings_table
from lab.traces import RunRecorder, schema


def test_import_csv_and_jsonl_grades(store, tmp_path):
    csv = tmp_path / "experts.csv"
    csv.write_text("grader,item,dimension,value\nalice,q1,accuracy,4\nalice,q2,accuracy,2\n"
                   "bob,q1,accuracy,5\nbob,q2,accuracy,2\nbob,q2,style,3\n")
    runs = import_grades(store, csv)
    assert len(runs) == 2
    jl = tmp_path / "judge.jsonl"
    jl.write_text("\n".join(json.dumps({"judge": "gpt", "text": q, "score": v, "verdict": lab})
                            for q, v, lab in [("q1", 4, "good"), ("q2", 1, "bad")]))
    import_grades(store, jl, provenance="model", columns={"grader": "judge", "item": "text", "value": "score",
                                                          "label": "verdict"})
    scores = store.scores_frame()
    assert len(scores) == 7
    human = scores[scores.provenance == "human"]
    assert set(human.source) == {"alice", "bob"} and human.is_human.all()
    assert set(human[human.source == "bob"].dimension) == {"accuracy", "style"}
    model = scores[scores.provenance == "model"]
    assert model.label.tolist() == ["good", "bad"] and not model.is_human.any()
    assert {r["task"] for r in store.list_runs()} == {"experts", "judge"}
    # agreement is a query over the stored scores
    table = ratings_table(scores, dimension=None, agg="mean")  # pool dimensions
    res = agreement(table["alice"], table["gpt"], n_boot=0)
    assert res["percent_agreement"] == 0.5


def test_bad_grades_name_the_row_and_record_nothing(store, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("grader,item,value\nalice,q1,4\nalice,q2,excellent\n")
    with pytest.raises(ScoringError, match=r"bad.csv:3: field 'value': 'excellent' is not a number"):
        import_grades(store, bad)
    (tmp_path / "headers.csv").write_text("who,what,value\nalice,q1,4\n")
    with pytest.raises(ScoringError, match=r"need columns grader, item .*missing \['grader', 'item'\]"):
        import_grades(store, tmp_path / "headers.csv")
    with pytest.raises(ScoringError, match="cannot read"):
        import_grades(store, tmp_path / "missing.csv")
    assert store.list_runs() == [] and store.scores_frame().empty


def test_grades_on_stored_runs(store):
    import pandas as pd

    rec = RunRecorder.start(store, {"task": "t1", "agent": "dera"})
    rec.finish(answer="aspirin")
    import_grades(store, pd.DataFrame({"grader": ["dr_x"], "item": ["t1"], "value": [3], "run_id": [rec.run_id]}))
    s = store.scores_frame()
    assert s.run_id.tolist() == [rec.run_id] and s.source.tolist() == ["dr_x"]


def test_rescore_stored_runs_without_rerunning(store):
    for task, answer in [("t1", "Aspirin"), ("t2", "ibuprofen"), ("t3", None)]:
        rec = RunRecorder.start(store, {"task": task, "agent": "react"})
        rec.finish(answer=answer if answer else schema.ABSENT)
    n_events = store.count_events()
    assert run_output(store, store.list_runs()[0]["run_id"]) == "Aspirin"
    out = rescore(store, get_scorer("normalized_match"), target={"t1": "aspirin", "t2": "naproxen", "t3": "x"})
    assert out.set_index("task")["skipped"]["t3"] == "the run recorded no output"
    assert out.set_index("task")["value"][["t1", "t2"]].tolist() == [1.0, 0.0]
    assert store.count_events() == n_events + 2
    runs = store.runs_frame().set_index("task")
    assert runs.loc["t1", "score.normalized_match"] == 1.0
    with pytest.raises(ScoringError, match=r"re-scoring run \w+ \(task 't1'\)"):
        rescore(store, get_scorer("numeric"), target={"t1": "not a number"})


def test_grades_csv_with_a_byte_order_mark(store, tmp_path):
    """Spreadsheets save CSV with a BOM; the header still reads ``grader``."""
    f = tmp_path / "excel.csv"
    f.write_bytes("\ufeffgrader,item,value\nalice,q1,4\n".encode())
    import_grades(store, f)
    assert store.scores_frame().value.tolist() == [4.0]
