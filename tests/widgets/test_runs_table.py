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
