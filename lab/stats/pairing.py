"""Pairing two sources' scores on the same items (or tasks) before comparing them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from lab.stats.bootstrap import StatsError, warn


def pair_series(a: Any, b: Any, *, join: str = "exact", names: tuple[str, str] = ("a", "b"),
                what: str = "agreement") -> tuple[pd.Series, pd.Series]:
    """Pair two sources' scores by item id (Series) or by position (sequences); drop pairs with a
    missing score (with a warning).

    Raises:
        StatsError: Repeated ids, mismatched ids with ``join="exact"``, or different lengths.
    """
    if join not in ("exact", "inner"):
        raise StatsError(f"join must be 'exact' or 'inner', not {join!r}")
    if isinstance(a, pd.Series) and isinstance(b, pd.Series):
        for s, nm in ((a, names[0]), (b, names[1])):
            if not s.index.is_unique:
                dup = s.index[s.index.duplicated()].unique()[:5].tolist()
                raise StatsError(f"{nm} grades some items more than once (e.g. {dup}); aggregate repeated "
                                 "grades first (ratings_table(..., agg='mean'))")
        only_a, only_b = a.index.difference(b.index), b.index.difference(a.index)
        if (len(only_a) or len(only_b)) and join == "exact":
            raise StatsError(
                f"item ids differ: {len(only_a)} only in {names[0]} (e.g. {only_a[:3].tolist()}), "
                f"{len(only_b)} only in {names[1]} (e.g. {only_b[:3].tolist()}); pass join='inner' to use "
                "the common items")
        common = a.index.intersection(b.index, sort=False)
        sa, sb = a.loc[common], b.loc[common]
    else:
        sa, sb = pd.Series(list(a) if not isinstance(a, np.ndarray) else a), \
            pd.Series(list(b) if not isinstance(b, np.ndarray) else b)
        if len(sa) != len(sb):
            raise StatsError(f"{names[0]} has {len(sa)} scores and {names[1]} {len(sb)}; pass Series indexed "
                             "by item id to pair them by id")
    missing = sa.isna().to_numpy() | sb.isna().to_numpy()
    if missing.any():
        warn(f"{what}: dropped {int(missing.sum())} of {len(sa)} items with a missing score")
        sa, sb = sa[~missing], sb[~missing]
    return sa, sb
