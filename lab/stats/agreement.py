"""Agreement between two score sources (judge vs expert, expert vs expert, judge vs judge) and among
many raters, with bootstrap confidence intervals.

Discrete grades (nominal, ordinal): every measure is a function of the contingency table of grade pairs,
and a bootstrap resample of items is a multinomial draw of that table, so estimates and 1,000 resamples
cost a few small tables instead of 1,000 passes over the items. :func:`table_measures` implements the
definitions of scikit-learn (kappa, weighted kappa, macro precision/recall/F1), scipy (Pearson, Spearman,
Kendall tau-b) and ``krippendorff`` (alpha) on tables; the tests check it against those libraries on the
items. Continuous scores use scipy and ``krippendorff`` for the estimates and resample items in chunks.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import krippendorff
import numpy as np
import pandas as pd
from scipy import stats

from lab.stats.bootstrap import CI, StatsError, percentile_ci, warn
from lab.stats.pairing import pair_series

KINDS = ("nominal", "ordinal", "interval")
_NOMINAL = ("percent_agreement", "cohen_kappa", "krippendorff_alpha", "precision_macro", "recall_macro",
            "f1_macro")
_NUMERIC = ("pearson", "spearman", "kendall_tau_b", "rmse", "mae", "krippendorff_alpha")
MEASURES = {
    "nominal": _NOMINAL,
    "ordinal": (*_NOMINAL, "weighted_kappa", *_NUMERIC[:-1]),
    "interval": _NUMERIC,
}
_ORDINAL_MAX_LEVELS = 20
_CHUNK = 2_000_000  # elements per bootstrap chunk on the continuous path


@dataclass
class Agreement:
    """Every applicable agreement measure between two score sources, with CIs.

    Attributes:
        kind: ``nominal``, ``ordinal`` or ``interval`` (what the measures assumed).
        n: Number of paired items used.
        measures: One row per measure (``estimate``, ``low``, ``high``), indexed by name.
        confusion: Counts of (a, b) grade pairs for discrete grades (rows: a, columns: b); else ``None``.
        disagreements: The items where the two sources differ most (``item``, ``a``, ``b``, ``gap``).
        level: Confidence level of the intervals.
    """

    kind: str
    n: int
    measures: pd.DataFrame
    confusion: pd.DataFrame | None
    disagreements: pd.DataFrame
    level: float = 0.95
    names: tuple[str, str] = ("a", "b")
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> float:
        """The point estimate of measure ``name``."""
        if name not in self.measures.index:
            raise KeyError(f"{name!r} was not computed for {self.kind} data; have {list(self.measures.index)}")
        return float(self.measures.at[name, "estimate"])

    def ci(self, name: str) -> CI:
        """Measure ``name`` with its confidence interval."""
        row = self.measures.loc[name]
        return CI(float(row["estimate"]), float(row["low"]), float(row["high"]), self.level)

    def to_dict(self) -> dict[str, float]:
        """``{measure: estimate}``."""
        return {k: float(v) for k, v in self.measures["estimate"].items()}

    def _repr_html_(self) -> str:
        head = f"<p>{self.names[0]} vs {self.names[1]}: {self.kind}, n={self.n}, {self.level:.0%} bootstrap CIs</p>"
        return head + self.measures.to_html(float_format=lambda x: f"{x:.4f}")

    def __repr__(self) -> str:
        return (f"Agreement({self.names[0]} vs {self.names[1]}, {self.kind}, n={self.n})\n"
                + self.measures.to_string(float_format=lambda x: f"{x:.4f}"))


def agreement(
    a: pd.Series | Sequence[Any] | np.ndarray,
    b: pd.Series | Sequence[Any] | np.ndarray,
    *,
    kind: str = "auto",
    measures: Sequence[str] | None = None,
    labels: Sequence[Any] | None = None,
    weights: str = "quadratic",
    by: pd.Series | None = None,
    join: str = "exact",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    top: int = 10,
    names: tuple[str, str] | None = None,
    missing: str = "drop",
) -> Agreement:
    """Agreement between two score sources on the same items.

    ``b`` is the reference where a measure is asymmetric (``precision_macro``, ``recall_macro``,
    ``f1_macro`` treat ``b`` as the truth and ``a`` as the prediction; ``percent_agreement`` is then the
    accuracy of ``a``).

    Measures by kind — nominal: ``percent_agreement``, ``cohen_kappa``, ``krippendorff_alpha``,
    ``precision_macro``, ``recall_macro``, ``f1_macro``; ordinal: those plus ``weighted_kappa``,
    ``pearson``, ``spearman``, ``kendall_tau_b``, ``rmse``, ``mae``; interval: ``pearson``, ``spearman``,
    ``kendall_tau_b``, ``rmse``, ``mae``, ``krippendorff_alpha``.

    Args:
        a: Scores of the first source: a Series indexed by item id, or a sequence (paired by position).
        b: Scores of the second source, same shape.
        kind: ``"auto"`` (strings: nominal; at most 20 integer levels: ordinal; else interval) or one of
            ``nominal``/``ordinal``/``interval``.
        measures: Compute only these (default: every applicable one).
        labels: The ordered categories (default: the union of observed values; for integer grades every
            integer from the smallest to the largest, so weighted kappa spaces them by value).
        weights: ``"quadratic"`` or ``"linear"`` for ``weighted_kappa``.
        by: System of each item (Series indexed like ``a``): correlate per-system means instead
            (system-level agreement; interval measures).
        join: ``"exact"``: ``a`` and ``b`` must grade the same items; ``"inner"``: use the common items.
        n_boot: Bootstrap resamples of items; 0 for point estimates only (NaN bounds).
        level: Confidence level.
        seed: Random seed of the resampling.
        top: How many most-disagreeing items to list.
        names: Display names of the two sources (default: the Series names, else ``a`` and ``b``).
        missing: What a missing score of ``a`` means. ``"drop"``: the item is left out (with a warning),
            so a judge is measured only where it gave a verdict. ``"category"``: it is a verdict of its
            own, :data:`MISSING`, which matches no reference grade — LLMBar's and MT-Bench's judge accuracy,
            which counts a missing or unparsable verdict as wrong (nominal verdicts only). Items the
            reference ``b`` lacks are dropped either way.

    Returns:
        An :class:`Agreement`. Items where a score is missing are dropped (see ``missing``), and a measure undefined
        for the data (kappa when both sides give one grade, correlations of a constant) is NaN; both with
        a :class:`~lab.stats.StatsWarning`.

    Raises:
        StatsError: Repeated or mismatched item ids, fewer than two paired items, unknown kind,
            measure or weights, or a measure that does not apply to the kind.
    """
    if n_boot < 0:
        raise StatsError(f"n_boot must be >= 0, not {n_boot}")
    if weights not in ("quadratic", "linear"):
        raise StatsError(f"weights must be 'quadratic' or 'linear', not {weights!r}")
    names = names or (_name(a, "a"), _name(b, "b"))
    if missing == "category":
        if kind not in ("auto", "nominal") or by is not None:
            raise StatsError("missing='category' makes a missing verdict a category of its own: it applies to "
                             f"nominal verdicts, not kind={kind!r}{' with by=' if by is not None else ''}")
        kind = "nominal"
        a = _missing_as_category(a)
        labels = None if labels is None else [*labels, MISSING]
    elif missing != "drop":
        raise StatsError(f"missing must be 'drop' or 'category', not {missing!r}")
    sa, sb = pair_series(a, b, join=join, names=names)
    if by is not None:
        sa, sb = _system_means(sa, sb, by, names)
        kind = "interval"
    if len(sa) < 2:
        raise StatsError(f"agreement needs at least 2 paired items; {names[0]} and {names[1]} share {len(sa)}")
    kind = _kind(sa, sb) if kind == "auto" else kind
    if kind not in KINDS:
        raise StatsError(f"kind must be 'auto' or one of {KINDS}, not {kind!r}")
    wanted = list(MEASURES[kind] if measures is None else measures)
    bad = [m for m in wanted if m not in MEASURES[kind]]
    if bad:
        raise StatsError(f"measure(s) {bad} do not apply to {kind} data; applicable: {list(MEASURES[kind])}")
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    if kind == "interval":
        xa, xb = _numeric(sa, names[0]), _numeric(sb, names[1])
        est = _interval_point(xa, xb, wanted, notes)
        boot = _interval_boot(xa, xb, wanted, rng, n_boot)
        confusion = None
        gap = np.abs(xa - xb)
    else:
        cats = _categories(sa, sb, kind, labels)
        ia, ib = _codes(sa, cats, names[0]), _codes(sb, cats, names[1])
        table = np.zeros((len(cats), len(cats)))
        np.add.at(table, (ia, ib), 1)
        values = _ordinal_values(cats) if kind == "ordinal" else None
        est = {m: float(v[0]) for m, v in table_measures(table[None], values, wanted, weights).items()}
        notes += [f"{m} is undefined for these grades (a source gives every item the same grade); returned NaN"
                  for m in wanted if np.isnan(est[m])]
        boot = _table_boot(table, values, wanted, weights, rng, n_boot)
        confusion = pd.DataFrame(table.astype(int), index=pd.Index(cats, name=names[0]),
                                 columns=pd.Index(cats, name=names[1]))
        gap = np.abs(ia - ib).astype(float) if kind == "ordinal" else (ia != ib).astype(float)
    for note in notes:
        warn(note)
    rows = {}
    for m in wanted:
        lo, hi = percentile_ci(boot[m], level) if n_boot else (np.nan, np.nan)
        rows[m] = {"estimate": est[m], "low": float(lo), "high": float(hi)}
    table_df = pd.DataFrame.from_dict(rows, orient="index")
    order = np.argsort(-gap, kind="stable")[: max(top, 0)]
    order = order[gap[order] > 0]
    dis = pd.DataFrame({"item": sa.index[order], names[0]: sa.to_numpy()[order], names[1]: sb.to_numpy()[order],
                        "gap": gap[order]})
    return Agreement(kind, len(sa), table_df, confusion, dis, level, names, notes)


# -- inputs -------------------------------------------------------------------------------------------

MISSING = "(missing)"
"""The category a missing verdict becomes with ``agreement(..., missing="category")``."""


def _missing_as_category(a: Any) -> Any:
    if isinstance(a, pd.Series):
        return a.astype(object).where(a.notna(), MISSING)
    return [MISSING if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in a]


def _name(x: Any, default: str) -> str:
    return str(x.name) if isinstance(x, pd.Series) and x.name is not None else default


def _system_means(sa: pd.Series, sb: pd.Series, by: pd.Series, names: tuple[str, str]) -> tuple[pd.Series, pd.Series]:
    if not isinstance(by, pd.Series):
        raise StatsError("by= must be a Series mapping item id to system")
    sys_ = by.reindex(sa.index)
    if sys_.isna().any():
        raise StatsError(f"by= has no system for {int(sys_.isna().sum())} item(s), e.g. "
                         f"{sa.index[sys_.isna().to_numpy()][:3].tolist()}")
    ma, mb = _numeric(sa, names[0]), _numeric(sb, names[1])
    return (pd.Series(ma, index=sa.index).groupby(sys_.to_numpy()).mean(),
            pd.Series(mb, index=sb.index).groupby(sys_.to_numpy()).mean())


def _is_integral(s: pd.Series) -> bool:
    x = pd.to_numeric(s, errors="coerce")
    return bool(x.notna().all() and np.all(np.mod(x.to_numpy(float), 1) == 0))


def _kind(sa: pd.Series, sb: pd.Series) -> str:
    numeric = all(pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) for s in (sa, sb))
    if not numeric:
        return "nominal"
    if _is_integral(sa) and _is_integral(sb):
        lo = min(sa.min(), sb.min())
        hi = max(sa.max(), sb.max())
        if hi - lo + 1 <= _ORDINAL_MAX_LEVELS:
            return "ordinal"
    return "interval"


def _numeric(s: pd.Series, name: str) -> np.ndarray:
    x = pd.to_numeric(s, errors="coerce")
    if x.isna().any():
        raise StatsError(f"{name} has non-numeric scores (e.g. {s[x.isna()].iloc[0]!r}); use kind='nominal'")
    return x.to_numpy(float)


def _categories(sa: pd.Series, sb: pd.Series, kind: str, labels: Sequence[Any] | None) -> list[Any]:
    if labels is not None:
        cats = list(labels)
        outside = set(sa) | set(sb)
        outside -= set(cats)
        if outside:
            raise StatsError(f"grades {sorted(map(str, outside))[:5]} are not among labels {cats}")
        return cats
    if kind == "ordinal":
        if not (_is_integral(sa) and _is_integral(sb)):
            raise StatsError("ordinal grades that are not integers need labels=[...] in order")
        lo, hi = int(min(sa.min(), sb.min())), int(max(sa.max(), sb.max()))
        return list(range(lo, hi + 1))
    try:
        return sorted(set(sa) | set(sb))
    except TypeError:
        return sorted(set(sa) | set(sb), key=str)


def _ordinal_values(cats: list[Any]) -> np.ndarray:
    """Numeric grades of ordered categories: themselves when numeric, else their ranks 0, 1, 2 ..."""
    try:
        return np.asarray(cats, dtype=float)
    except (TypeError, ValueError):
        return np.arange(len(cats), dtype=float)


def _codes(s: pd.Series, cats: list[Any], name: str) -> np.ndarray:
    codes = pd.Categorical(s.to_numpy(), categories=cats).codes.astype(np.int64)
    if (codes < 0).any():
        raise StatsError(f"{name} has grade {s.iloc[int(np.flatnonzero(codes < 0)[0])]!r} not among {cats}")
    return codes


# -- point estimates of continuous scores (scipy, krippendorff) ---------------------------------------


def _interval_point(xa: np.ndarray, xb: np.ndarray, wanted: list[str], notes: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    const = [nm for nm, x in (("a", xa), ("b", xb)) if np.ptp(x) == 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in wanted:
            if m in ("pearson", "spearman", "kendall_tau_b"):
                if const:
                    notes.append(f"{m} is undefined: source {const[0]} is constant; returned NaN")
                    out[m] = np.nan
                elif m == "pearson":
                    out[m] = float(stats.pearsonr(xa, xb).statistic)
                elif m == "spearman":
                    out[m] = float(stats.spearmanr(xa, xb).statistic)
                else:
                    out[m] = float(stats.kendalltau(xa, xb, variant="b").statistic)
            elif m == "rmse":
                out[m] = float(np.sqrt(np.mean((xa - xb) ** 2)))
            elif m == "mae":
                out[m] = float(np.mean(np.abs(xa - xb)))
            elif m == "krippendorff_alpha":
                if np.unique(np.concatenate([xa, xb])).size < 2:
                    notes.append("krippendorff_alpha is undefined: every grade is the same value; returned NaN")
                    out[m] = np.nan
                else:
                    out[m] = float(krippendorff.alpha(np.vstack([xa, xb]), level_of_measurement="interval"))
    return out


# -- vectorised bootstrap replicates ------------------------------------------------------------------


def _table_boot(table: np.ndarray, values: np.ndarray | None, wanted: list[str], weights: str,
                rng: np.random.Generator, n_boot: int) -> dict[str, np.ndarray]:
    if n_boot == 0:
        return {}
    n = int(table.sum())
    c = table.shape[0]
    tabs = rng.multinomial(n, table.ravel() / n, size=n_boot).reshape(n_boot, c, c).astype(float)
    return table_measures(tabs, values, wanted, weights)


def table_measures(tabs: np.ndarray, values: np.ndarray | None, wanted: Sequence[str],
                   weights: str = "quadratic") -> dict[str, np.ndarray]:
    """Agreement measures of contingency tables ``tabs[..., i, j]`` = count of items graded ``i`` by
    a and ``j`` by b, vectorised over leading axes. ``values`` are the numeric grades of the categories
    (ordinal data), ``None`` for nominal. Undefined cases are NaN.

    The same definitions as scikit-learn (kappa, weighted kappa, macro precision/recall/F1 with
    ``zero_division=0`` over classes present in either source), scipy (Pearson, Spearman with average
    ranks, Kendall tau-b) and ``krippendorff`` (alpha).
    """
    tabs = np.asarray(tabs, dtype=float)
    c = tabs.shape[-1]
    n = tabs.sum(axis=(-2, -1))
    ra, cb = tabs.sum(-1), tabs.sum(-2)  # marginals of a (rows) and b (columns)
    diag = np.diagonal(tabs, axis1=-2, axis2=-1)
    out: dict[str, np.ndarray] = {}
    idx = np.arange(c, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        for m in wanted:
            if m == "percent_agreement":
                out[m] = diag.sum(-1) / n
            elif m in ("cohen_kappa", "weighted_kappa"):
                if m == "cohen_kappa":
                    w = 1.0 - np.eye(c)
                else:
                    d = np.abs(idx[:, None] - idx[None, :])
                    w = d ** 2 if weights == "quadratic" else d
                expected = ra[..., :, None] * cb[..., None, :] / n[..., None, None]
                out[m] = 1.0 - (tabs * w).sum((-2, -1)) / (expected * w).sum((-2, -1))
            elif m in ("precision_macro", "recall_macro", "f1_macro"):
                present = (ra + cb) > 0
                prec = np.where(ra > 0, diag / np.where(ra > 0, ra, 1), 0.0)
                rec = np.where(cb > 0, diag / np.where(cb > 0, cb, 1), 0.0)
                if m == "precision_macro":
                    per = prec
                elif m == "recall_macro":
                    per = rec
                else:
                    s = prec + rec
                    per = np.where(s > 0, 2 * prec * rec / np.where(s > 0, s, 1), 0.0)
                out[m] = (per * present).sum(-1) / present.sum(-1)
            elif m == "krippendorff_alpha":
                o = tabs + np.swapaxes(tabs, -1, -2)
                out[m] = alpha_from_coincidences(o, values, "ordinal" if values is not None else "nominal")
            elif m in ("pearson", "rmse", "mae"):
                if values is None:
                    raise StatsError(f"{m} needs numeric grades: the categories' values (ordinal data)")
                v = values
                if m == "rmse":
                    out[m] = np.sqrt((tabs * (v[:, None] - v[None, :]) ** 2).sum((-2, -1)) / n)
                elif m == "mae":
                    out[m] = (tabs * np.abs(v[:, None] - v[None, :])).sum((-2, -1)) / n
                else:
                    out[m] = _weighted_corr(tabs, np.broadcast_to(v, ra.shape), np.broadcast_to(v, cb.shape))
            elif m == "spearman":
                out[m] = _weighted_corr(tabs, _midranks(ra), _midranks(cb))
            elif m == "kendall_tau_b":
                out[m] = _kendall_tau_b_table(tabs)
    return out


def _midranks(marg: np.ndarray) -> np.ndarray:
    """Average rank of each category given its counts (ties share the mean rank), per leading index."""
    before = np.cumsum(marg, axis=-1) - marg
    return before + (marg + 1) / 2


def _weighted_corr(tabs: np.ndarray, xa: np.ndarray, xb: np.ndarray) -> np.ndarray:
    """Pearson correlation of (x_a[i], x_b[j]) pairs weighted by the table's counts."""
    n = tabs.sum((-2, -1))
    ra, cb = tabs.sum(-1), tabs.sum(-2)
    ma = (ra * xa).sum(-1) / n
    mb = (cb * xb).sum(-1) / n
    da, db = xa - ma[..., None], xb - mb[..., None]
    cov = (tabs * da[..., :, None] * db[..., None, :]).sum((-2, -1))
    va, vb = (ra * da ** 2).sum(-1), (cb * db ** 2).sum(-1)
    return cov / np.sqrt(va * vb)


def _kendall_tau_b_table(tabs: np.ndarray) -> np.ndarray:
    # below_right[i, j] = sum of counts with row > i and column > j; below_left: row > i, column < j
    rev = np.flip(np.cumsum(np.cumsum(np.flip(tabs, (-2, -1)), -2), -1), (-2, -1))
    below_right = np.zeros_like(tabs)
    below_right[..., :-1, :-1] = rev[..., 1:, 1:]
    cum_left = np.flip(np.cumsum(np.flip(tabs, -2), -2), -2)  # rows >= i
    cum_left = np.cumsum(cum_left, -1)  # rows >= i, columns <= j
    below_left = np.zeros_like(tabs)
    below_left[..., :-1, 1:] = cum_left[..., 1:, :-1]
    conc = (tabs * below_right).sum((-2, -1))
    disc = (tabs * below_left).sum((-2, -1))
    n = tabs.sum((-2, -1))
    n0 = n * (n - 1) / 2
    ta = (tabs.sum(-1) * (tabs.sum(-1) - 1) / 2).sum(-1)
    tb = (tabs.sum(-2) * (tabs.sum(-2) - 1) / 2).sum(-1)
    return (conc - disc) / np.sqrt((n0 - ta) * (n0 - tb))


def alpha_from_coincidences(o: np.ndarray, values: np.ndarray | None, level: str) -> np.ndarray:
    """Krippendorff's alpha from coincidence matrices ``o[..., c, k]`` (vectorised over leading axes).

    Args:
        o: Coincidence matrices over the value domain.
        values: Numeric values of the domain (``interval``/``ratio``); unused for nominal and ordinal.
        level: ``nominal``, ``ordinal``, ``interval`` or ``ratio``.
    """
    v = o.shape[-1]
    n_v = o.sum(-1)
    n = n_v.sum(-1)
    i = np.arange(v)
    if level == "nominal":
        delta = np.broadcast_to(1.0 - np.eye(v), o.shape)
    elif level == "ordinal":
        cs = np.cumsum(n_v, -1)
        lo, hi = np.minimum(i[:, None], i[None, :]), np.maximum(i[:, None], i[None, :])
        between = cs[..., hi] - cs[..., lo] + n_v[..., lo]
        delta = (between - (n_v[..., :, None] + n_v[..., None, :]) / 2) ** 2
    elif level in ("interval", "ratio") and values is None:
        raise StatsError(f"krippendorff alpha at the {level} level needs the domain's numeric values")
    elif level == "interval" and values is not None:
        delta = np.broadcast_to((values[:, None] - values[None, :]) ** 2, o.shape)
    elif level == "ratio" and values is not None:
        s = values[:, None] + values[None, :]
        delta = np.broadcast_to(np.divide(values[:, None] - values[None, :], s, out=np.zeros((v, v)),
                                          where=s != 0) ** 2, o.shape)
    else:
        raise StatsError(f"unknown level of measurement {level!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = (o * delta).sum((-2, -1))
        expected = (n_v[..., :, None] * n_v[..., None, :] * delta).sum((-2, -1)) / (n - 1)
        return 1.0 - observed / expected


def _interval_boot(xa: np.ndarray, xb: np.ndarray, wanted: list[str], rng: np.random.Generator,
                   n_boot: int) -> dict[str, np.ndarray]:
    if n_boot == 0:
        return {}
    n = xa.size
    out = {m: np.empty(n_boot) for m in wanted}
    chunk = max(1, _CHUNK // n)
    # rank codes over the pooled values, so a resample's ranks come from counts, not a sort
    ua, inv_a = np.unique(xa, return_inverse=True)
    ub, inv_b = np.unique(xb, return_inverse=True)
    pooled, inv_p = np.unique(np.concatenate([xa, xb]), return_inverse=True)
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        idx = rng.integers(0, n, size=(stop - start, n))
        a, b = xa[idx], xb[idx]
        for m in wanted:
            if m == "pearson":
                out[m][start:stop] = _rowwise_corr(a, b)
            elif m == "spearman":
                out[m][start:stop] = _rowwise_corr(_resample_ranks(inv_a[idx], ua.size),
                                                   _resample_ranks(inv_b[idx], ub.size))
            elif m == "rmse":
                out[m][start:stop] = np.sqrt(np.mean((a - b) ** 2, axis=1))
            elif m == "mae":
                out[m][start:stop] = np.mean(np.abs(a - b), axis=1)
            elif m == "kendall_tau_b":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out[m][start:stop] = [stats.kendalltau(x, y, variant="b").statistic
                                          for x, y in zip(a, b, strict=True)]
            elif m == "krippendorff_alpha":
                codes = np.stack([inv_p[:n][idx], inv_p[n:][idx]], axis=-1)  # (chunk, n, 2)
                out[m][start:stop] = _alpha_pairs(codes, pooled, "interval")
    return out


def _resample_ranks(codes: np.ndarray, n_levels: int) -> np.ndarray:
    """Average ranks of each resampled row, from per-level counts (no sort)."""
    rows = np.arange(codes.shape[0])[:, None]
    counts = np.zeros((codes.shape[0], n_levels))
    np.add.at(counts, (rows, codes), 1)
    return _midranks(counts)[rows, codes]


def _rowwise_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    da = a - a.mean(axis=1, keepdims=True)
    db = b - b.mean(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (da * db).sum(1) / np.sqrt((da ** 2).sum(1) * (db ** 2).sum(1))


def _alpha_pairs(codes: np.ndarray, domain: np.ndarray, level: str) -> np.ndarray:
    """Alpha of two raters' paired codes ``(..., n, 2)`` via coincidence matrices."""
    v = domain.size
    lead = codes.shape[:-2]
    o = np.zeros((*lead, v, v))
    flat = o.reshape(-1, v * v)
    rows = np.repeat(np.arange(flat.shape[0]), codes.shape[-2])
    ca, cb = codes[..., 0].reshape(-1), codes[..., 1].reshape(-1)
    np.add.at(flat, (rows, ca * v + cb), 1)
    np.add.at(flat, (rows, cb * v + ca), 1)
    return alpha_from_coincidences(flat.reshape(*lead, v, v), domain, level)


# -- many raters --------------------------------------------------------------------------------------


def krippendorff_alpha(
    ratings: pd.DataFrame,
    *,
    level: Literal["nominal", "ordinal", "interval", "ratio"] = "nominal",
    domain: Sequence[Any] | None = None,
    n_boot: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> CI:
    """Krippendorff's alpha for any number of raters, with missing grades, and a bootstrap CI over items.

    Args:
        ratings: One row per item, one column per rater (NaN where a rater did not grade the item),
            as :func:`ratings_table` gives.
        level: ``nominal``, ``ordinal``, ``interval`` or ``ratio``.
        domain: The ordered values (default: the sorted observed values).
        n_boot: Resamples of items (0: no CI).
        ci: Confidence level.
        seed: Random seed.

    Raises:
        StatsError: Fewer than two raters, or fewer than two items graded by two raters or more.
    """
    if ratings.shape[1] < 2:
        raise StatsError(f"krippendorff_alpha needs at least two raters; got {list(ratings.columns)}")
    data = ratings.to_numpy(dtype=object).T
    observed = pd.unique(pd.Series(ratings.to_numpy().ravel()).dropna())
    dom = list(domain) if domain is not None else sorted(observed.tolist())
    lookup = {c: i for i, c in enumerate(dom)}
    counts = np.zeros((data.shape[1], len(dom)))
    for (_, u), v in np.ndenumerate(data):
        if v is not None and not (isinstance(v, float) and np.isnan(v)):
            if v not in lookup:
                raise StatsError(f"grade {v!r} is not in the domain {dom}")
            counts[u, lookup[v]] += 1
    m = counts.sum(1)
    keep = m >= 2
    if keep.sum() < 2:
        raise StatsError("krippendorff_alpha needs at least two items graded by two raters or more")
    counts, m = counts[keep], m[keep]
    values = np.asarray(dom, dtype=float) if level in ("interval", "ratio") else None
    if np.count_nonzero(counts.sum(0)) < 2:
        warn("krippendorff_alpha is undefined: every grade is the same value; returned NaN")
        return CI(np.nan, np.nan, np.nan, ci)
    est = float(krippendorff.alpha(value_counts=counts, value_domain=dom if values is not None else None,
                                   level_of_measurement=level))
    if n_boot == 0:
        return CI(est, np.nan, np.nan, ci)
    # per-item coincidence contributions; a resample of items is a weighted sum of them
    unit_o = (counts[:, :, None] * counts[:, None, :] - counts[:, :, None] * np.eye(len(dom))) / (m - 1)[:, None, None]
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(len(m), np.full(len(m), 1 / len(m)), size=n_boot).astype(float)
    o = np.einsum("bu,uvw->bvw", weights, unit_o)
    lo, hi = percentile_ci(alpha_from_coincidences(o, values, level), ci)
    return CI(est, float(lo), float(hi), ci)


def ratings_table(
    scores: pd.DataFrame,
    *,
    by: str = "source",
    value: str = "value",
    item: str = "item_id",
    dimension: str | None = "overall",
    agg: str | None = None,
) -> pd.DataFrame:
    """Pivot a scores frame (one row per score) into one row per item and one column per rater.

    Args:
        scores: As :meth:`lab.traces.TraceStore.scores_frame` gives (or any frame with these columns).
        by: Column naming the rater (``source``: a grader id or model name; or ``scorer``).
        value: ``value`` for numbers, ``label`` for categorical verdicts.
        item: Column naming the item.
        dimension: Keep only this rubric dimension (default ``overall``: a single-verdict scorer's; rubric
            judges and human grades often have only named dimensions, e.g. ``accuracy``). ``None``: keep
            all; then they must not repeat.
        agg: How to combine repeated grades of one item by one rater: ``mean``, ``median``, ``first``,
            ``last``, ``majority``; ``None`` raises on repeats.

    Raises:
        StatsError: Missing columns, no grades of ``dimension`` (the message lists the dimensions there
            are), or repeated grades with ``agg=None``.
    """
    missing = {by, value, item} - set(scores.columns)
    if missing:
        raise StatsError(f"ratings_table: scores frame lacks column(s) {sorted(missing)}")
    df = scores
    if dimension is not None and "dimension" in df.columns:
        df = df[df["dimension"] == dimension]
        if df.empty and not scores.empty:
            dims = sorted(map(str, scores["dimension"].dropna().unique()))
            raise StatsError(f"ratings_table: no grades of dimension {dimension!r}; the scores have dimension(s) "
                             f"{dims[:10]}: pass dimension=... (one of them) or dimension=None")
    dup = df.duplicated([item, by])
    if dup.any():
        if agg is None:
            ex = df.loc[dup, [item, by]].head(3).to_records(index=False).tolist()
            raise StatsError(f"ratings_table: {int(dup.sum())} repeated grade(s) of one item by one rater "
                             f"(e.g. {ex}); pass agg='mean', 'majority', 'last' ...")
        fn = (lambda s: s.mode().iloc[0]) if agg == "majority" else agg
        return df.groupby([item, by])[value].agg(fn).unstack(by)
    return df.pivot(index=item, columns=by, values=value)


def majority(ratings: pd.DataFrame) -> pd.Series:
    """Per item, the grade most raters gave (ties: the smallest such grade), ignoring missing grades."""
    return ratings.apply(lambda row: row.dropna().mode().iloc[0] if row.notna().any() else np.nan, axis=1)
