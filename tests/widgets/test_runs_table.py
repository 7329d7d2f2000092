"""Runs table: filters, score columns per scorer, selection, empty store."""

from __future__ import annotations

import panel as pn

from widgets.runs_table import RunsTable


def test_filters_and_score_columns(study):
    store, ids = study
    t = RunsTable(store)
    df = store.runs_frame()
    assert len(t.table.value) == len(df) == len(ids)
    assert {"score.task_score", "score.expert.correctness", "score.judge:smollm2.clarity"} <= set(t.table.value.columns)
    t.who = "human"
    assert set(t.table.value["who"]) == {"human"} and len(t.table.value) == int(df["is_human"].sum())
    t.param.update(who="all", loops=["react"], tasks=["sample/t01"])
    expected = df[(df["agent"] == "react") & (df["task"] == "sample/t01")]
    assert sorted(t.table.value["run_id"]) == sorted(expected["run_id"])


def test_selection_and_reload(study):
    store, ids = study
    t = RunsTable(store)
    t.table.selection = [0, 2]
    assert t.selected == [t.table.value["run_id"][0], t.table.value["run_id"][2]]
    new = store.create_run({"task": "sample/t99", "agent": "dera"}, status="done")
    t.reload()
    assert new in set(t.table.value["run_id"]) and "sample/t99" in t.param.tasks.objects


def test_empty_store_says_so(store):
    t = RunsTable(store)
    alerts = pn.panel(t.summary()).select(pn.pane.Alert)
    assert alerts and "has no runs yet" in alerts[0].object


def test_poll_reloads_on_new_runs_and_scores_and_opens_clicked_rows(study):
    from panel.models.tabulator import CellClickEvent

    from lab.traces import Score

    store, ids = study
    t = RunsTable(store)
    assert not t.poll()
    new = store.create_run({"task": "sample/t98", "agent": "dera"}, status="done")
    assert t.poll() and new in set(t.table.value["run_id"])
    store.add_score(new, Score("exact", 0.123456, provenance="rule"))
    assert t.poll() and t.table.value.set_index("run_id").loc[new, "score.exact"] == 0.123
    t.table._process_event(CellClickEvent(model=None, column="task", row=2))
    assert t.open_run == t.table.value["run_id"][2]


def test_agent_summary_and_columns_with_data(study):
    from widgets.runs_table import agent_summary, with_data

    store, ids = study
    t = RunsTable(store, who="AI")
    assert all(t.frame[c].notna().any() for c in t.frame.columns if c.startswith("score."))
    summary = agent_summary(t.frame)
    assert set(summary["contestant"]) == {"react/smollm2", "dera/smollm2", "human experts"}
    assert summary["runs"].sum() == len(t.frame)
    with_empty_score = t.frame.assign(**{"score.none": float("nan")})
    assert with_data(with_empty_score).columns.tolist() == with_data(t.frame).columns.tolist()
