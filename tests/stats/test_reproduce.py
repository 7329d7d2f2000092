"""Published numbers reproduced from the shared data, through the public API: grades go into the
trace store as scores, and one agreement call per comparison reads them back."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lab.scoring import import_grades
from lab.stats import agreement, budget_curve, majority, ratings_table
from lab.stats.best_of_k import best_of_k
from lab.traces.importers.metr import import_metr

ANNOTATORS = ["annotator1", "annotator2", "annotator3"]


def load_pandalm(store, d):
    """PandaLM: 3 annotators and 2 judges give 0 (tie), 1 or 2 for 999 response pairs."""
    test = pd.read_json(d / "testset-v1.json")
    humans = test.melt(id_vars="idx", value_vars=ANNOTATORS, var_name="grader", value_name="value")
    import_grades(store, humans.rename(columns={"idx": "item"}), scorer="preference", dataset="pandalm")
    gpt = pd.read_json(d / "gpt-3.5-turbo-testset-v1.json", dtype={"gpt_result": str})
    pandalm = pd.read_json(d / "pandalm-7b-testset-v1.json")
    judges = pd.concat([
        # 'Tie' and unparseable ('garbage') verdicts count as a tie, as PandaLM's evaluation does
        pd.DataFrame({"item": gpt.idx, "grader": "gpt-3.5-turbo",
                      "value": gpt.gpt_result.map({"1": 1, "2": 2}).fillna(0)}),
        pd.DataFrame({"item": pandalm.idx, "grader": "PandaLM-7B", "value": pandalm.pandalm_result}),
    ])
    import_grades(store, judges, scorer="preference", provenance="model", dataset="pandalm")
    return ratings_table(store.scores_frame(), by="source")


def test_pandalm_judges_vs_annotator_majority(store, shared_data):
    table = load_pandalm(store, shared_data / "judges" / "pandalm")
    assert table.shape == (999, 5)
    gold = majority(table[ANNOTATORS])
    want = {"gpt-3.5-turbo": (71.07, 58.79, 57.36, 57.55), "PandaLM-7B": (66.77, 57.38, 57.50, 57.43)}
    for judge, (acc, p, r, f1) in want.items():
        res = agreement(table[judge], gold, kind="nominal", n_boot=300)
        got = [res[m] * 100 for m in ("percent_agreement", "precision_macro", "recall_macro", "f1_macro")]
        assert np.round(got, 2).tolist() == [acc, p, r, f1], judge
        ci = res.ci("percent_agreement")
        assert ci.low < ci.estimate < ci.high and ci.high - ci.low < 0.07
        assert res.confusion.to_numpy().sum() == 999


def test_pandalm_annotator_pair_kappas(store, shared_data):
    table = load_pandalm(store, shared_data / "judges" / "pandalm")
    kappas = [agreement(table[x], table[y], kind="nominal", n_boot=0)["cohen_kappa"]
              for x, y in [("annotator1", "annotator2"), ("annotator1", "annotator3"), ("annotator2", "annotator3")]]
    assert np.round(kappas, 2).tolist() == [0.85, 0.88, 0.86]


def test_llm_rubric_q0_expected_and_argmax(store, shared_data):
    d = shared_data / "judges" / "llm-rubric" / "data" / "real_data"
    human = pd.read_csv(d / "human_judges_real_convs_FIXED_ANON.tsv", sep="\t")
    import_grades(store, human.assign(dimension="Q0"), scorer="human", dataset="llm-rubric",
                  columns={"grader": "annotator_id", "item": "text_id", "value": "Q0"})
    llm = pd.read_csv(d / "gpt-3.5-turbo-16k_real_evaluations_FIXED.tsv", sep="\t")
    probs = llm[[f"answer{k}_prob" for k in range(1, 5)]].to_numpy()
    for scorer, value in [("expected", probs @ np.arange(1, 5) / probs.sum(1)), ("argmax", probs.argmax(1) + 1)]:
        import_grades(store, pd.DataFrame({"grader": "gpt-3.5-turbo-16k", "item": llm.text_id, "value": value,
                                           "dimension": llm.criterion}),
                      scorer=scorer, provenance="model", dataset="llm-rubric")
    q0 = ratings_table(store.scores_frame(), by="scorer", dimension="Q0")
    assert len(q0) == 223
    want = {"expected": (0.9187, 0.1773, 0.0867, 0.0659), "argmax": (1.2016, 0.1401, 0.0870, 0.0811)}
    for scorer, numbers in want.items():
        res = agreement(q0[scorer], q0["human"], n_boot=300)
        got = [res[m] for m in ("rmse", "pearson", "spearman", "kendall_tau_b")]
        assert np.round(got, 4).tolist() == list(numbers), scorer
        assert res.kind == ("interval" if scorer == "expected" else "ordinal")
        lo, hi = res.ci("pearson").low, res.ci("pearson").high
        assert lo < res["pearson"] < hi and lo < 0.05  # weak agreement: the CI nearly reaches zero


def test_metr_style_best_of_k_curves_from_one_call(store, tmp_path):
    rng = np.random.default_rng(4)
    rows, n = [], 0
    for task in ["t_a/main", "t_b/main", "t_c/main"]:
        for alias, limit, k_runs, mu in [("agent-x", 1800, 40, 0.3), ("human", 28800, 4, 0.6)]:
            for _ in range(k_runs):
                n += 1
                rows.append({"run_id": f"r{n}", "task_id": task, "alias": alias, "model": alias,
                             "score": float(np.clip(rng.normal(mu, 0.2), 0, 1)), "time_limit": limit,
                             "started_at": 1_700_000_000, "completed_at": 1_700_000_000 + limit * 0.9,
                             "human_minutes": limit * 0.9 / 60})
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    import_metr(store, path)
    budgets = [1800, 3600, 4 * 3600, 8 * 3600, 16 * 3600]
    curve = budget_curve(store.runs_frame(), budgets, scores=store.scores_frame(), score="score.score",
                         n_boot=300)
    assert set(curve.group) == {"agent-x", "human"}
    runs = pd.DataFrame(rows)
    for (group, budget), row in curve.set_index(["group", "budget"]).iterrows():
        limit = 1800 if group == "agent-x" else 28800
        k = int(budget // limit)
        sub = runs[runs.alias == group]
        if k >= 1:
            want = np.mean([best_of_k(g.score, k) for _, g in sub.groupby("task_id")])
            assert row["score"] == pytest.approx(want)
            assert row["low"] <= row["score"] <= row["high"]
        else:  # a human run cut before its end, with no intermediate scores yet: the starting score 0
            assert row["score"] == 0.0
    agent = curve[curve.group == "agent-x"]["score"].to_numpy()
    assert np.all(np.diff(agent) > 0)  # more budget, more attempts, a better best
