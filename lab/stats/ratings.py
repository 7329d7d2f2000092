"""Ratings from pairwise preferences: Elo and Bradley–Terry, with bootstrap CIs, per dimension
(Multi-Elo: one rating per rubric dimension)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lab.stats.bootstrap import StatsError, check_n_boot, percentile_ci

_WINNERS = {"a": 1.0, "b": 0.0, "tie": 0.5}


def _prepare(comparisons: pd.DataFrame, dimension: str | None) -> tuple[pd.DataFrame, list[str]]:
    missing = {"model_a", "model_b", "winner"} - set(comparisons.columns)
    if missing:
        raise StatsError(f"comparisons lack column(s) {sorted(missing)}; need model_a, model_b, winner")
    df = comparisons.reset_index(drop=True)
    bad = ~df["winner"].isin(list(_WINNERS))
    if bad.any():
        raise StatsError(f"winner must be 'a', 'b' or 'tie'; row {int(np.flatnonzero(bad)[0])} has "
                         f"{df['winner'][bad].iloc[0]!r}")
    same = np.flatnonzero(df["model_a"] == df["model_b"])
    if same.size:
        raise StatsError(f"a model is compared with itself in row {int(same[0])}")
    if len(df) == 0:
        raise StatsError("no comparisons")
    models = sorted(set(df["model_a"]) | set(df["model_b"]))
    df = df.assign(_dim=df[dimension] if dimension and dimension in df.columns else "overall")
    return df, models


def _frame(dim: str, models: list[str], est: np.ndarray, boot: np.ndarray, level: float,
           games: np.ndarray) -> pd.DataFrame:
    lo, hi = percentile_ci(boot, level) if boot.size else (np.full(len(models), np.nan),) * 2
    return pd.DataFrame({"dimension": dim, "model": models, "rating": est, "low": lo, "high": hi,
                         "games": games.astype(int)})


def elo(
    comparisons: pd.DataFrame,
    *,
    dimension: str | None = "dimension",
    k: float = 4.0,
    base: float = 1000.0,
    scale: float = 400.0,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Online Elo ratings, in the order given, with CIs from resampled (re-ordered) comparisons.

    Args:
        comparisons: Rows with ``model_a``, ``model_b``, ``winner`` (``a``, ``b`` or ``tie``) and
            optionally a dimension column.
        dimension: Column to rate separately by (Multi-Elo); ignored when absent.
        k: Update step.
        base: Starting rating.
        scale: Rating difference for 10:1 odds.
        n_boot: Bootstrap resamples of the comparisons (0: none).
        level: Confidence level.
        seed: Random seed.

    Returns:
        One row per dimension and model: ``rating``, ``low``, ``high``, ``games``.

    Raises:
        StatsError: Missing columns, unknown winners, self-comparisons.
    """
    df, models = _prepare(comparisons, dimension)
    rng = np.random.default_rng(seed)
    out = []
    for dim, d in df.groupby("_dim", sort=True):
        ia = d["model_a"].map(models.index).to_numpy()
        ib = d["model_b"].map(models.index).to_numpy()
        sa = d["winner"].map(_WINNERS).to_numpy(float)
        est = _elo_run(ia[None], ib[None], sa[None], len(models), k, base, scale)[0]
        boot = np.empty((0, len(models)))
        if n_boot:
            idx = rng.integers(0, len(d), size=(n_boot, len(d)))
            boot = _elo_run(ia[idx], ib[idx], sa[idx], len(models), k, base, scale)
        games = np.bincount(np.concatenate([ia, ib]), minlength=len(models))
        out.append(_frame(dim, models, est, boot, level, games))
    return pd.concat(out, ignore_index=True)


def _elo_run(ia: np.ndarray, ib: np.ndarray, sa: np.ndarray, m: int, k: float, base: float,
             scale: float) -> np.ndarray:
    """Elo over ``(R, n)`` sequences of games at once (one sequence per row)."""
    r = np.full((ia.shape[0], m), base)
    rows = np.arange(ia.shape[0])
    for t in range(ia.shape[1]):
        a, b = ia[:, t], ib[:, t]
        expected = 1.0 / (1.0 + 10.0 ** ((r[rows, b] - r[rows, a]) / scale))
        delta = k * (sa[:, t] - expected)
        r[rows, a] += delta
        r[rows, b] -= delta
    return r


def bradley_terry(
    comparisons: pd.DataFrame,
    *,
    dimension: str | None = "dimension",
    base: float = 1000.0,
    scale: float = 400.0,
    prior: float = 0.01,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    tol: float = 1e-10,
    max_iter: int = 10_000,
) -> pd.DataFrame:
    """Bradley–Terry maximum-likelihood ratings on the Elo scale, with bootstrap CIs.

    ``P(i beats j) = 1 / (1 + 10^((r_j - r_i) / scale))``; a tie counts half a win for each side.
    Fitted with Hunter's MM algorithm, vectorised over bootstrap resamples (a resample of comparisons
    is a multinomial draw of the win table). Ratings are centred so their mean is ``base``.

    Args:
        comparisons: Rows with ``model_a``, ``model_b``, ``winner`` (``a``, ``b``, ``tie``).
        dimension: Column to rate separately by; ignored when absent.
        base: Mean rating.
        scale: Rating difference for 10:1 odds.
        prior: Virtual tie games added to every pair that met, so a model that never won keeps a
            finite rating (0 gives the plain MLE, which then does not exist).
        n_boot: Bootstrap resamples (0: none).
        level: Confidence level.
        seed: Random seed.
        tol: Convergence tolerance on log-strengths.
        max_iter: Iteration cap.

    Returns:
        One row per dimension and model: ``rating``, ``low``, ``high``, ``games``.

    Raises:
        StatsError: Bad columns or winners, or ``prior < 0``.
    """
    if prior < 0:
        raise StatsError(f"prior must be >= 0, not {prior}")
    df, models = _prepare(comparisons, dimension)
    m = len(models)
    rng = np.random.default_rng(seed)
    out = []
    for dim, d in df.groupby("_dim", sort=True):
        ia = d["model_a"].map(models.index).to_numpy()
        ib = d["model_b"].map(models.index).to_numpy()
        sa = d["winner"].map(_WINNERS).to_numpy(float)
        # cells: (a, b, outcome) with outcome a-wins / tie / b-wins
        cell = (ia * m + ib) * 3 + np.select([sa == 1.0, sa == 0.5], [0, 1], 2)
        counts = np.bincount(cell, minlength=m * m * 3).astype(float)
        met = (counts.reshape(m, m, 3).sum(-1) + counts.reshape(m, m, 3).sum(-1).T) > 0
        est = _bt_fit(_wins(counts[None], m), met, prior, tol, max_iter)[0]
        boot = np.empty((0, m))
        if n_boot:
            check_n_boot(n_boot)
            draws = rng.multinomial(len(d), counts / counts.sum(), size=n_boot).astype(float)
            boot = _bt_fit(_wins(draws, m), met, prior, tol, max_iter)
        games = np.bincount(np.concatenate([ia, ib]), minlength=m)
        to_elo = scale / math.log(10)
        out.append(_frame(dim, models, base + to_elo * est, base + to_elo * boot, level, games))
    return pd.concat(out, ignore_index=True)


def _wins(counts: np.ndarray, m: int) -> np.ndarray:
    """``W[..., i, j]``: wins of i over j, ties counting half, from ``(R, m*m*3)`` cell counts."""
    c = counts.reshape(-1, m, m, 3)
    w = c[..., 0] + 0.5 * c[..., 1]  # a beat b (rows a, columns b)
    w_rev = c[..., 2] + 0.5 * c[..., 1]  # b beat a
    return w + np.swapaxes(w_rev, -1, -2)


def _bt_fit(wins: np.ndarray, met: np.ndarray, prior: float, tol: float, max_iter: int) -> np.ndarray:
    """Centred log-strengths (natural log) for each of ``R`` win tables, by MM iterations."""
    w = wins + prior * 0.5 * met  # a virtual tie per pair that met: half a win each way
    n = w + np.swapaxes(w, -1, -2)
    total_wins = w.sum(-1)
    p = np.ones(w.shape[:-1])
    for _ in range(max_iter):
        denom = (n / (p[..., :, None] + p[..., None, :])).sum(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = total_wins / denom
            new = new / np.exp(np.mean(np.log(new), axis=-1, keepdims=True))
            change = np.nanmax(np.abs(np.log(new) - np.log(p)))
        p = new
        if change < tol:
            break
    with np.errstate(divide="ignore"):
        lp = np.log(p)
    return lp - lp.mean(-1, keepdims=True)
