"""Elo and Bradley–Terry (against scikit-learn's logistic regression and a plain loop), paired tests
(against scipy and brute-force enumeration)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from lab.stats import StatsError, bradley_terry, elo, paired_bootstrap, permutation_test


def games(seed=0, n=400, strengths=(0.0, 0.5, 1.0, 2.0), dims=("overall",)):
    rng = np.random.default_rng(seed)
    rows = []
    models = [f"m{i}" for i in range(len(strengths))]
    for dim in dims:
        for _ in range(n):
            i, j = rng.choice(len(models), 2, replace=False)
            p = 1 / (1 + math.exp(strengths[j] - strengths[i]))
            u = rng.uniform()
            winner = "tie" if abs(u - p) < 0.05 else ("a" if u < p else "b")
            rows.append({"model_a": models[i], "model_b": models[j], "winner": winner, "dimension": dim})
    return pd.DataFrame(rows)


def test_bradley_terry_matches_logistic_regression():
    df = games()
    models = sorted(set(df.model_a) | set(df.model_b))
    X, y, w = [], [], []
    for r in df.itertuples():
        x = np.zeros(len(models))
        x[models.index(r.model_a)], x[models.index(r.model_b)] = 1, -1
        for outcome, weight in (((1, 1.0),) if r.winner == "a" else ((0, 1.0),) if r.winner == "b"
                                else ((1, 0.5), (0, 0.5))):
            X.append(x), y.append(outcome), w.append(weight)
    lr = LogisticRegression(C=np.inf, fit_intercept=False, tol=1e-12, max_iter=10_000)
    lr.fit(np.array(X), np.array(y), sample_weight=np.array(w))
    beta = lr.coef_[0] - lr.coef_[0].mean()
    got = bradley_terry(df, prior=0.0, n_boot=200)
    want = 1000 + 400 / math.log(10) * beta
    assert got["rating"].to_numpy() == pytest.approx(want, abs=0.05)
    assert (got["low"] <= got["rating"]).all() and (got["rating"] <= got["high"]).all()
    assert got["rating"].is_monotonic_increasing  # m0 < m1 < m2 < m3 by construction


def test_elo_vectorised_resamples_equal_a_plain_loop():
    df = games(n=60)
    got = elo(df, n_boot=0)
    r = {m: 1000.0 for m in sorted(set(df.model_a) | set(df.model_b))}
    for g in df.itertuples():
        e = 1 / (1 + 10 ** ((r[g.model_b] - r[g.model_a]) / 400))
        s = {"a": 1.0, "b": 0.0, "tie": 0.5}[g.winner]
        r[g.model_a] += 4 * (s - e)
        r[g.model_b] -= 4 * (s - e)
    assert got.set_index("model")["rating"].to_dict() == pytest.approx(r)
    ci = elo(df, n_boot=100)
    assert (ci["high"] > ci["low"]).all()


def test_ratings_per_dimension_and_bad_input():
    df = games(n=150, dims=("accuracy", "style"))
    out = bradley_terry(df, n_boot=50)
    assert set(out["dimension"]) == {"accuracy", "style"} and len(out) == 8
    assert out.groupby("dimension")["rating"].mean().tolist() == pytest.approx([1000.0, 1000.0])
    with pytest.raises(StatsError, match="winner must be"):
        elo(df.assign(winner="A"))
    with pytest.raises(StatsError, match="lack column"):
        bradley_terry(df.drop(columns="winner"))
    with pytest.raises(StatsError, match="compared with itself"):
        elo(df.assign(model_b=df.model_a))
    # a model that never wins keeps a finite rating with the default prior
    lose = pd.DataFrame({"model_a": ["x"] * 5, "model_b": ["y"] * 5, "winner": ["a"] * 5})
    assert np.isfinite(bradley_terry(lose, n_boot=20)["rating"]).all()


def test_paired_tests():
    rng = np.random.default_rng(0)
    tasks = [f"t{i}" for i in range(12)]
    agent = pd.Series(rng.uniform(size=12), index=tasks)
    human = agent - 0.2 + rng.normal(scale=0.05, size=12)
    res = paired_bootstrap(agent, human.sample(frac=1, random_state=1), n_boot=2000)  # pairs by task id
    assert res.diff == pytest.approx((agent - human).mean())
    assert res.low < res.diff < res.high and res.p_value < 0.01
    # exact sign-flip permutation test against enumeration of all 2^n sign patterns
    d = np.array([0.3, -0.1, 0.25, 0.05, 0.2, -0.05, 0.15, 0.1])
    perm = permutation_test(d, np.zeros(8), n_resamples=10_000)
    means = [abs(np.mean(d * s)) for s in itertools.product([1, -1], repeat=8)]
    assert perm.p_value == pytest.approx(np.mean(np.array(means) >= abs(d.mean()) - 1e-12))
    with pytest.raises(StatsError, match="at least 2 paired"):
        paired_bootstrap([1.0], [2.0])
    with pytest.raises(StatsError, match="item ids differ"):
        permutation_test(agent, human.rename(lambda t: t + "x"))


def test_paired_bootstrap_interval_matches_scipy_bootstrap():
    from scipy import stats

    rng = np.random.default_rng(3)
    a, b = rng.normal(0.5, 0.2, 60), rng.normal(0.4, 0.2, 60)
    ours = paired_bootstrap(a, b, n_boot=20_000, seed=1)
    ref = stats.bootstrap((a - b,), np.mean, n_resamples=20_000, method="percentile", rng=np.random.default_rng(2))
    assert ours.low == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert ours.high == pytest.approx(ref.confidence_interval.high, abs=0.01)
