"""agreement(): every measure against scipy / scikit-learn / krippendorff, the vectorised bootstrap
replicates against the same libraries on explicit resamples, and bad input."""

from __future__ import annotations

import warnings

import krippendorff
import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score, precision_recall_fscore_support

from lab.stats import StatsError, StatsWarning, agreement, krippendorff_alpha, majority, ratings_table
from lab.stats.agreement import _resample_ranks, _rowwise_corr, alpha_from_coincidences, table_measures


def reference(a, b, labels, numeric):
    """Every measure computed directly by the libraries."""
    p, r, f, _ = precision_recall_fscore_support(b, a, average="macro", zero_division=0)
    codes = np.vstack([[labels.index(x) for x in a], [labels.index(x) for x in b]]).astype(float)
    out = {
        "percent_agreement": np.mean(np.asarray(a) == np.asarray(b)),
        "cohen_kappa": cohen_kappa_score(a, b, labels=labels),
        "precision_macro": p, "recall_macro": r, "f1_macro": f,
        "krippendorff_alpha": krippendorff.alpha(codes, value_domain=np.arange(len(labels)),
                                                 level_of_measurement="ordinal" if numeric else "nominal"),
    }
    if numeric:
        x, y = np.asarray(a, float), np.asarray(b, float)
        out.update({
            "weighted_kappa": cohen_kappa_score(a, b, labels=labels, weights="quadratic"),
            "pearson": stats.pearsonr(x, y).statistic, "spearman": stats.spearmanr(x, y).statistic,
            "kendall_tau_b": stats.kendalltau(x, y).statistic,
            "rmse": np.sqrt(np.mean((x - y) ** 2)), "mae": np.mean(np.abs(x - y)),
        })
    return out


def graded_pair(rng, n, levels=5):
    a = rng.integers(1, levels + 1, n)
    b = np.clip(a + rng.integers(-1, 2, n), 1, levels)
    return a, b


@pytest.mark.parametrize("seed", range(4))
def test_ordinal_point_estimates_match_libraries(seed):
    rng = np.random.default_rng(seed)
    a, b = graded_pair(rng, 60)
    res = agreement(pd.Series(a), pd.Series(b), n_boot=200, seed=seed)
    assert res.kind == "ordinal"
    ref = reference(a.tolist(), b.tolist(), list(range(1, 6)), numeric=True)
    for m, v in ref.items():
        assert res[m] == pytest.approx(v, abs=1e-12), m
        ci = res.ci(m)
        assert ci.low <= ci.high


@pytest.mark.parametrize("seed", range(4))
def test_table_replicates_equal_libraries_on_explicit_resamples(seed):
    """A bootstrap replicate on the table path is the same number the libraries give on resampled items."""
    rng = np.random.default_rng(seed)
    a, b = graded_pair(rng, 50)
    labels = list(range(1, 6))
    for _ in range(3):
        idx = rng.integers(0, a.size, a.size)
        ra, rb = a[idx], b[idx]
        tab = np.zeros((5, 5))
        np.add.at(tab, (ra - 1, rb - 1), 1)
        got = table_measures(tab[None], np.arange(1.0, 6.0), list(reference(ra, rb, labels, True)))
        for m, v in reference(ra.tolist(), rb.tolist(), labels, numeric=True).items():
            assert got[m][0] == pytest.approx(v, abs=1e-10), m
    # nominal: strings, classes missing from one side
    a_s = rng.choice(["A", "B", "tie"], 40)
    b_s = np.where(rng.uniform(size=40) < 0.7, a_s, "A")
    res = agreement(a_s, b_s, n_boot=0)
    ref = reference(a_s.tolist(), b_s.tolist(), sorted(set(a_s) | set(b_s)), numeric=False)
    for m, v in ref.items():
        assert res[m] == pytest.approx(v, abs=1e-12), m
    cats = sorted(set(a_s) | set(b_s))
    tab = pd.crosstab(pd.Categorical(a_s, cats), pd.Categorical(b_s, cats), dropna=False).to_numpy(float)
    got = table_measures(tab[None], None, list(ref))
    for m, v in ref.items():
        assert got[m][0] == pytest.approx(v, abs=1e-10), m


def test_interval_measures_and_replicates():
    rng = np.random.default_rng(5)
    x = rng.normal(size=80)
    y = np.round(x + rng.normal(size=80), 1)  # ties on one side
    res = agreement(pd.Series(x, name="judge"), pd.Series(y, name="expert"), n_boot=300)
    assert res.kind == "interval" and res.names == ("judge", "expert")
    assert res["pearson"] == pytest.approx(stats.pearsonr(x, y).statistic)
    assert res["kendall_tau_b"] == pytest.approx(stats.kendalltau(x, y).statistic)
    assert res["krippendorff_alpha"] == pytest.approx(krippendorff.alpha(np.vstack([x, y]),
                                                                         level_of_measurement="interval"))
    for m in ("pearson", "spearman", "rmse", "mae", "kendall_tau_b", "krippendorff_alpha"):
        ci = res.ci(m)
        assert ci.low <= ci.estimate <= ci.high, m
    idx = rng.integers(0, 80, size=(3, 80))
    _, inv_x = np.unique(x, return_inverse=True)
    _, inv_y = np.unique(y, return_inverse=True)
    rx = _resample_ranks(inv_x[idx], inv_x.max() + 1)
    ry = _resample_ranks(inv_y[idx], inv_y.max() + 1)
    for i in range(3):
        assert _rowwise_corr(rx, ry)[i] == pytest.approx(stats.spearmanr(x[idx[i]], y[idx[i]]).statistic)
        assert _rowwise_corr(x[idx], y[idx])[i] == pytest.approx(stats.pearsonr(x[idx[i]], y[idx[i]]).statistic)


def test_confusion_disagreements_and_ids():
    a = pd.Series({"q1": 1, "q2": 2, "q3": 3, "q4": 5})
    b = pd.Series({"q4": 1, "q3": 3, "q2": 2, "q1": 2})
    res = agreement(a, b, n_boot=0, top=2)
    assert res.confusion.loc[5, 1] == 1 and res.confusion.to_numpy().sum() == 4
    assert res.disagreements["item"].tolist() == ["q4", "q1"]
    assert res.disagreements["gap"].tolist() == [4.0, 1.0]
    assert np.isnan(res.ci("pearson").low)  # no bootstrap asked for


def test_system_level_agreement():
    rng = np.random.default_rng(2)
    systems = pd.Series(np.repeat(["s1", "s2", "s3", "s4"], 25), index=[f"i{i}" for i in range(100)])
    quality = systems.map({"s1": 1.0, "s2": 2.0, "s3": 3.0, "s4": 4.0})
    judge = quality + rng.normal(scale=0.3, size=100)
    human = quality + rng.normal(scale=0.3, size=100)
    res = agreement(judge, human, by=systems, n_boot=100)
    assert res.n == 4 and res.kind == "interval"
    assert res["pearson"] == pytest.approx(stats.pearsonr(judge.groupby(systems).mean(),
                                                          human.groupby(systems).mean()).statistic)


def test_bad_input_is_named():
    a = pd.Series([1, 2, 3], index=["x", "y", "z"])
    with pytest.raises(StatsError, match="item ids differ: 1 only in a .*join='inner'"):
        agreement(a, pd.Series([1, 2, 3], index=["x", "y", "w"]))
    assert agreement(a, pd.Series([1, 2, 3], index=["x", "y", "w"]), join="inner", n_boot=0).n == 2
    with pytest.raises(StatsError, match="more than once"):
        agreement(pd.Series([1, 2], index=["x", "x"]), pd.Series([1, 2], index=["x", "y"]))
    with pytest.raises(StatsError, match="at least 2 paired items"):
        agreement([1], [1])
    with pytest.raises(StatsError, match="has 2 scores and b 3"):
        agreement([1, 2], [1, 2, 3])
    with pytest.raises(StatsError, match="do not apply to nominal"):
        agreement(["a", "b"], ["a", "a"], measures=["pearson"])
    with pytest.warns(StatsWarning, match="dropped 1 of 4"):
        res = agreement([1, 2, np.nan, 4], [1, 2, 3, 3], n_boot=0)
    assert res.n == 3


def test_constant_columns_give_nan_with_a_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = agreement([3, 3, 3, 3], [1, 2, 3, 4], n_boot=50)
    msgs = [str(w.message) for w in caught if issubclass(w.category, StatsWarning)]
    assert np.isnan(res["pearson"]) and np.isnan(res["spearman"])
    assert any("pearson is undefined" in m for m in msgs)
    with pytest.warns(StatsWarning, match="cohen_kappa is undefined"):
        res = agreement([2, 2, 2], [2, 2, 2], measures=["cohen_kappa", "percent_agreement"], n_boot=10)
    assert np.isnan(res["cohen_kappa"]) and res["percent_agreement"] == 1.0


def test_krippendorff_alpha_many_raters_with_missing():
    # Krippendorff's own example (the krippendorff package's doctest): alpha ordinal 0.815
    data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, np.nan, np.nan, np.nan],
            [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, np.nan, 3],
            [np.nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, np.nan],
            [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, np.nan]]
    ratings = pd.DataFrame(np.array(data).T, columns=["r1", "r2", "r3", "r4"])
    for level in ("nominal", "ordinal", "interval", "ratio"):
        ci = krippendorff_alpha(ratings, level=level, n_boot=300)
        assert ci.estimate == pytest.approx(krippendorff.alpha(data, level_of_measurement=level))
        assert ci.low <= ci.estimate <= ci.high
    assert round(krippendorff_alpha(ratings, level="ordinal", n_boot=0).estimate, 3) == 0.815
    with pytest.raises(StatsError, match="at least two raters"):
        krippendorff_alpha(ratings[["r1"]])


def test_alpha_from_coincidences_matches_package_on_two_raters():
    rng = np.random.default_rng(9)
    a, b = graded_pair(rng, 40)
    o = np.zeros((5, 5))
    np.add.at(o, (a - 1, b - 1), 1)
    o = o + o.T
    for level in ("nominal", "ordinal", "interval"):
        want = krippendorff.alpha(np.vstack([a, b]).astype(float), value_domain=[1, 2, 3, 4, 5],
                                  level_of_measurement=level)
        assert alpha_from_coincidences(o, np.arange(1.0, 6.0), level) == pytest.approx(want)


def test_ratings_table_and_majority():
    scores = pd.DataFrame({"item_id": ["i1", "i1", "i1", "i2", "i2", "i2", "i2"],
                           "source": ["ann1", "ann2", "ann3", "ann1", "ann2", "ann3", "ann3"],
                           "value": [1, 1, 2, 0, 2, 2, 1], "dimension": "overall"})
    with pytest.raises(StatsError, match="repeated grade"):
        ratings_table(scores)
    t = ratings_table(scores, agg="last")
    assert t.loc["i2", "ann3"] == 1
    assert majority(t).to_dict() == {"i1": 1, "i2": 0}  # i2 has a three-way tie: the smallest wins


def test_ordinal_string_labels_use_their_order():
    order = ["poor", "fair", "good", "excellent"]
    a = ["poor", "fair", "good", "excellent", "good", "fair"]
    b = ["fair", "fair", "good", "good", "excellent", "poor"]
    res = agreement(a, b, kind="ordinal", labels=order, n_boot=0)
    codes = {c: i for i, c in enumerate(order)}
    ref = agreement([codes[x] for x in a], [codes[x] for x in b], kind="ordinal", labels=[0, 1, 2, 3], n_boot=0)
    assert res.to_dict() == pytest.approx(ref.to_dict())
    assert list(res.confusion.index) == order
    with pytest.raises(StatsError, match="not among labels"):
        agreement(a, b, kind="ordinal", labels=order[:3])
