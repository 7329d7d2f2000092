"""best_of_k against enumeration of every subset; budget curves over stored runs."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest

from lab.stats import StatsError, StatsWarning, best_of_k, best_of_k_weights, budget_curve
from lab.traces import Score


def brute(scores, k, fn=max):
    subsets = list(itertools.combinations(scores, k))
    return sum(fn(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("seed", range(6))
def test_best_of_k_matches_enumeration(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 9))
    scores = np.round(rng.normal(size=n), 1)  # rounding makes ties
    for k in range(1, n + 1):
        assert best_of_k(scores, k) == pytest.approx(brute(scores, k), abs=1e-12)
        assert best_of_k(scores, k, reduce="mean") == pytest.approx(brute(scores, k, np.mean), abs=1e-12)


def test_weights_are_a_distribution_for_large_n():
    w = best_of_k_weights(10_000, 8)
    assert w.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.all(np.diff(w) >= 0)  # larger scores weigh more
    assert best_of_k(np.arange(10_000.0), 1) == pytest.approx(4999.5)
    assert best_of_k(np.arange(10_000.0), 10_000) == 9999.0


def test_best_of_k_bad_input():
    with pytest.raises(StatsError, match="k=4 with n=3"):
        best_of_k([1, 2, 3], 4)
    with pytest.raises(StatsError, match="1 <= k"):
        best_of_k([1, 2, 3], 0)
    with pytest.raises(StatsError, match="NaN"):
        best_of_k([1, np.nan], 1)
    with pytest.raises(StatsError, match="reduce"):
        best_of_k([1, 2], 1, reduce="median")
    with pytest.raises(StatsError, match="no scores"):
        best_of_k([], 1)


def _record(store, task, agent, final, elapsed, *, human=False, limit=3600.0, intermediate=()):
    run_id = store.create_run({"task": task, "agent": agent, "time_limit": limit}, is_human=human)
    for t, v in intermediate:
        store.add_score(run_id, Score("score", v, "human" if human else "rule", final=False), elapsed=t)
    store.add_score(run_id, Score("score", final, "rule"), elapsed=elapsed)
    store.finish_run(run_id, "done", elapsed=elapsed)
    return run_id


def test_budget_curve_from_stored_runs(store):
    # agent: 1-hour runs on two tasks; humans: 8-hour runs with timed intermediate scores
    agent_scores = {"t1": [0.1, 0.5, 0.3, 0.9], "t2": [0.2, 0.2, 0.6, 0.4]}
    for task, vals in agent_scores.items():
        for v in vals:
            _record(store, task, "react", v, 3000.0)
    human = {"t1": [(3600, 0.2, 0.6), (7200, 0.1, 0.8)], "t2": [(1800, 0.3, 0.5), (5400, 0.0, 0.7)]}
    for task, runs in human.items():
        for t, early, final in runs:
            _record(store, task, "human:x", final, 8 * 3600, human=True, limit=8 * 3600,
                    intermediate=[(t, early)])
    runs, scores = store.runs_frame(), store.scores_frame()
    budgets = [3600, 2 * 3600, 4 * 3600, 8 * 3600, 16 * 3600]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        curve = budget_curve(runs, budgets, scores=scores, n_boot=200, seed=1)
    agent = curve[curve.group == "react"].set_index("budget")
    for b in budgets:
        k = int(b // 3600)
        if k <= 4:
            want = np.mean([brute(v, k) for v in agent_scores.values()])
            assert agent.at[b, "score"] == pytest.approx(want)
            assert agent.at[b, "low"] <= agent.at[b, "score"] <= agent.at[b, "high"]
        else:
            assert np.isnan(agent.at[b, "score"])  # 16 runs wanted, 4 available
    assert any(issubclass(w.category, StatsWarning) and "fewer runs than k" in str(w.message) for w in caught)
    hum = curve[curve.group == "human"].set_index("budget")
    assert hum["is_human"].all() and (hum["n_runs"] == 4).all()
    # at 1 h: t1 runs have 0.2 (scored at 1 h) and nothing yet (0); t2: 0.3 and nothing yet (0)
    assert hum.at[3600, "score"] == pytest.approx(np.mean([np.mean([0.2, 0.0]), np.mean([0.3, 0.0])]))
    # at 2 h: t1: 0.2, 0.1; t2: 0.3, 0.0
    assert hum.at[7200, "score"] == pytest.approx(np.mean([0.15, 0.15]))
    # at 8 h: the final scores, k = 1; at 16 h: best of 2 of 2 runs
    assert hum.at[8 * 3600, "score"] == pytest.approx(np.mean([0.7, 0.6]))
    assert hum.at[16 * 3600, "score"] == pytest.approx(np.mean([0.8, 0.7]))


def test_budget_curve_mean_tasks_and_errors(store):
    for v in [0.1, 0.5, 0.3]:
        _record(store, "t1", "a", v, 10.0, limit=10.0)
    runs = store.runs_frame()
    c = budget_curve(runs, [20, 30], reduce={"t1": "mean"}, n_boot=50)
    assert c["score"].tolist() == pytest.approx([0.3, 0.3])
    c = budget_curve(runs, [30], n_boot=50, time_limit=10.0)
    assert c["score"].iloc[0] == pytest.approx(0.5)
    with pytest.raises(StatsError, match="budgets"):
        budget_curve(runs, [-1])
    with pytest.raises(StatsError, match="which score column"):
        budget_curve(runs.assign(**{"score.other": 1.0}), [10])
    with pytest.raises(StatsError, match="no positive time limit"):
        budget_curve(runs.drop(columns="config"), [10])


def test_budget_curve_ci_resamples_runs_within_task():
    rng = np.random.default_rng(0)
    runs = pd.DataFrame({"run_id": [f"r{i}" for i in range(400)], "task": np.repeat(["t1", "t2"], 200),
                         "agent": "a", "is_human": False, "elapsed": 1.0, "time_limit": 1.0,
                         "score.s": rng.uniform(size=400)})
    c = budget_curve(runs, [1, 4], n_boot=400, seed=3).set_index("k")
    # the CI of the mean of 200 uniforms per task: sd ~ 0.289 / sqrt(400) overall -> half-width ~0.028
    assert 0.015 < (c.at[1, "high"] - c.at[1, "low"]) / 2 < 0.045
    assert c.at[4, "score"] > c.at[1, "score"]


def test_budget_curve_rejects_mixed_time_limits():
    runs = pd.DataFrame({"run_id": ["a", "b"], "task": ["t1", "t2"], "agent": "x", "is_human": False,
                         "elapsed": 1.0, "time_limit": [1.0, 2.0], "score.s": [0.1, 0.2]})
    with pytest.raises(StatsError, match="group 'x' mixes time limits"):
        budget_curve(runs, [2.0], n_boot=10)


def test_vectorised_bootstrap_equals_per_resample_best_of_k():
    """Each bootstrap replicate of a task's curve is best_of_k of that resample's scores."""
    from lab.stats.best_of_k import _task_curve

    rng = np.random.default_rng(11)
    t = pd.DataFrame({"final": np.round(rng.uniform(size=9), 2)})  # ties included
    budgets = np.array([1.0, 2.0, 5.0])
    ks = np.array([1, 2, 5])
    est, boot, too_few = _task_curve(t, np.zeros((9, 3)), budgets, ks, "max", np.random.default_rng(5), 50)
    asc = np.sort(t["final"].to_numpy())
    draws = np.random.default_rng(5).integers(0, 9, size=(50, 9), dtype=np.uint16)  # the same stream
    for b in range(50):
        for j, k in enumerate(ks):
            assert boot[b, j] == pytest.approx(best_of_k(asc[draws[b]], int(k)))
    assert est.tolist() == pytest.approx([best_of_k(asc, int(k)) for k in ks]) and not too_few.any()
