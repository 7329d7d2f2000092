"""Human-vs-AI dashboard: numbers shown equal lab.stats on the same scores; bad input said plainly."""

from __future__ import annotations

import numpy as np
import panel as pn
from panel.models.tabulator import CellClickEvent

from lab.stats import agreement, bradley_terry, budget_curve, majority, ratings_table
from lab.traces import Score
from widgets.human_vs_ai import ALL_EXPERTS, HumanVsAIDashboard


def _alerts(view) -> str:
    return "\n".join(a.object for a in pn.panel(view).select(pn.pane.Alert))


def _tables(view, css):
    return [t for t in pn.panel(view).select(pn.widgets.Tabulator) if css in t.css_classes]


def test_agreement_table_equals_lab_stats(study):
    store, _ = study
    d = HumanVsAIDashboard(store, dimension="correctness", expert=ALL_EXPERTS, n_boot=200)
    shown = _tables(d.agreement_view(), "lab-agreement-table")[0].value.set_index("statistic")
    # the same numbers, computed here straight from the store's scores
    sf = store.scores_frame()
    grades = sf[(sf["scorer"] != "preference") & (sf["dimension"] == "correctness")]
    judge = grades[grades["provenance"] == "model"].groupby("run_id")["value"].last()
    experts = majority(ratings_table(grades[grades["provenance"] == "human"], by="source", item="run_id",
                                     dimension="correctness", agg="last"))
    expected = agreement(judge, experts, join="inner", n_boot=200, seed=0).measures
    assert np.allclose(shown.loc[expected.index, ["estimate", "low", "high"]].to_numpy(float),
                       expected[["estimate", "low", "high"]].to_numpy(float), equal_nan=True, atol=5e-4)
    assert {"cohen_kappa", "weighted_kappa", "krippendorff_alpha", "spearman"} <= set(shown.index)


def test_disagreement_click_opens_run(study):
    store, _ = study
    d = HumanVsAIDashboard(store, n_boot=50)
    table = _tables(d.agreement_view(), "lab-disagreements")[0]
    assert (table.value["gap"].diff().dropna() <= 0).all()
    table._process_event(CellClickEvent(model=None, column="run_id", row=0))
    assert d.open_run == table.value["run_id"].iloc[0]


def test_budget_curve_and_leaderboard(study):
    store, _ = study
    d = HumanVsAIDashboard(store, n_boot=100)
    curve = d.budget_curves()
    assert set(curve["group"]) == {"human", "react/smollm2", "dera/smollm2"}
    assert pn.panel(d.budget_view()).select(pn.pane.Vega)
    boards = _tables(d.leaderboard_view(), "lab-leaderboard")
    assert boards
    comps = __import__("widgets.study_data", fromlist=["comparisons"]).comparisons(store, store.runs_frame())
    bt = bradley_terry(comps, n_boot=0).set_index("model")["rating"]
    shown = boards[0].value.set_index("contestant")["rating bt"]
    assert np.allclose(shown.sort_index(), bt.sort_index().round(1))
    assert budget_curve is not None


def test_bad_input_said_plainly(store):
    d = HumanVsAIDashboard(store)
    assert "No scores" in _alerts(d.budget_view())
    assert "needs grades from an LLM judge" in _alerts(d.agreement_view())
    assert "No pairwise preferences" in _alerts(d.leaderboard_view())
    # a score type a chart cannot show: labels only
    run = store.create_run({"task": "t"}, status="done")
    store.add_score(run, Score("verdict", None, label="pass"))
    d.reload()
    assert "labels only" in _alerts(d.budget_view())
