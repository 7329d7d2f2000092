"""Shared pieces of the statistics: the error type, the confidence-interval record, percentile
intervals over bootstrap replicates, and resampling indices."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from lab.errors import LabError


class StatsError(LabError):
    """Input a statistic cannot be computed from (too few raters or runs, mismatched ids, k > n ...)."""


class StatsWarning(UserWarning):
    """A statistic is undefined for this input and was returned as NaN (or input was dropped)."""


def warn(message: str) -> None:
    """Emit a :class:`StatsWarning` pointing at the caller of the public function."""
    warnings.warn(message, StatsWarning, stacklevel=3)


@dataclass(frozen=True, slots=True)
class CI:
    """A point estimate with a two-sided bootstrap confidence interval.

    Attributes:
        estimate: The statistic on the observed data.
        low: Lower bound (the ``(1 - level) / 2`` percentile of the replicates).
        high: Upper bound.
        level: Confidence level, e.g. 0.95.
    """

    estimate: float
    low: float
    high: float
    level: float = 0.95


def percentile_ci(replicates: np.ndarray, level: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of bootstrap replicates along ``axis`` (NaN replicates ignored)."""
    if not 0 < level < 1:
        raise StatsError(f"confidence level must be between 0 and 1, not {level}")
    alpha = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices give NaN bounds, which is right
        lo, hi = np.nanquantile(replicates, [alpha, 1 - alpha], axis=axis)
    return lo, hi


def resample_indices(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """``(n_boot, n)`` indices drawn with replacement, in the smallest integer type that holds ``n``
    (so sorting them along rows is a radix sort)."""
    dtype = np.uint16 if n <= np.iinfo(np.uint16).max else np.int64
    return rng.integers(0, n, size=(n_boot, n), dtype=dtype)


def check_n_boot(n_boot: int) -> None:
    """Reject a non-positive number of resamples."""
    if n_boot < 1:
        raise StatsError(f"n_boot must be at least 1, not {n_boot}")
