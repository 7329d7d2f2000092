"""Paired comparisons of two agents (or an agent and human experts) on the same tasks or items."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from lab.stats.bootstrap import StatsError, check_n_boot, percentile_ci
from lab.stats.pairing import pair_series


@dataclass(frozen=True, slots=True)
class PairedResult:
    """Mean paired difference ``a - b`` with its CI and a two-sided p-value.

    Attributes:
        diff: Mean of ``a - b`` over the paired items.
        low: Lower CI bound (bootstrap; NaN for the permutation test).
        high: Upper CI bound.
        p_value: Two-sided p-value for "no difference".
        n: Number of pairs.
        method: ``paired_bootstrap`` or ``permutation``.
    """

    diff: float
    low: float
    high: float
    p_value: float
    n: int
    method: str


def _diffs(a: pd.Series | Sequence[float], b: pd.Series | Sequence[float], join: str, what: str) -> np.ndarray:
    sa, sb = pair_series(a, b, join=join, what=what)
    if len(sa) < 2:
        raise StatsError(f"{what} needs at least 2 paired items; got {len(sa)}")
    try:
        return sa.to_numpy(float) - sb.to_numpy(float)
    except (TypeError, ValueError) as e:
        raise StatsError(f"{what} needs numeric scores: {e}") from e


def paired_bootstrap(
    a: pd.Series | Sequence[float],
    b: pd.Series | Sequence[float],
    *,
    join: str = "exact",
    n_boot: int = 10_000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedResult:
    """Paired bootstrap of the mean difference ``a - b``: resample paired items with replacement.

    The p-value is twice the share of resampled mean differences on the far side of zero
    (at least ``1 / n_boot``).

    Args:
        a: Scores of the first system (Series by item/task id, or a sequence paired by position).
        b: Scores of the second system.
        join: ``exact`` (same items required) or ``inner`` (common items).
        n_boot: Resamples.
        level: Confidence level.
        seed: Random seed.

    Raises:
        StatsError: Mismatched items, fewer than 2 pairs, non-numeric scores.
    """
    check_n_boot(n_boot)
    d = _diffs(a, b, join, "paired_bootstrap")
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // d.size)
    for s in range(0, n_boot, chunk):
        e = min(s + chunk, n_boot)
        means[s:e] = d[rng.integers(0, d.size, size=(e - s, d.size))].mean(axis=1)
    lo, hi = percentile_ci(means, level)
    est = float(d.mean())
    far = np.mean(means <= 0) if est > 0 else np.mean(means >= 0) if est < 0 else 1.0
    p = float(min(1.0, max(2 * far, 1 / n_boot)))
    return PairedResult(est, float(lo), float(hi), p, d.size, "paired_bootstrap")


def permutation_test(
    a: pd.Series | Sequence[float],
    b: pd.Series | Sequence[float],
    *,
    join: str = "exact",
    n_resamples: int = 10_000,
    seed: int = 0,
) -> PairedResult:
    """Paired permutation (sign-flip) test of the mean difference, via :func:`scipy.stats.permutation_test`
    (exact when ``2**n <= n_resamples``).

    Raises:
        StatsError: Mismatched items, fewer than 2 pairs, non-numeric scores.
    """
    d = _diffs(a, b, join, "permutation_test")
    sa, sb = d, np.zeros_like(d)
    res = stats.permutation_test(
        (sa, sb), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples", vectorized=True,
        n_resamples=n_resamples, alternative="two-sided", rng=np.random.default_rng(seed),
    )
    return PairedResult(float(d.mean()), np.nan, np.nan, float(res.pvalue), d.size, "permutation")
