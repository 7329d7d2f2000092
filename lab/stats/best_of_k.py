"""Best-of-k across time budgets (RE-Bench / METR): how good is the best of k attempts, and how does
that grow with the total time budget — for agents and human experts alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from lab.stats.bootstrap import StatsError, check_n_boot, percentile_ci, resample_indices, warn

_REDUCES = ("max", "mean")


def best_of_k_weights(n: int, k: int) -> np.ndarray:
    """Weights ``w`` such that ``w @ sorted(scores)`` (ascending) is the expected best of ``k`` of the
    ``n`` scores drawn without replacement.

    The i-th largest score is the best of a random k-subset with probability
    ``C(n - i, k - 1) / C(n, k)``; computed by the ratio recurrence, so large ``n`` is exact to rounding.

    Raises:
        StatsError: ``k < 1`` or ``k > n``.
    """
    if k < 1 or k > n:
        raise StatsError(f"best-of-k needs 1 <= k <= n; got k={k} with n={n} runs")
    i = np.arange(1, n)  # ratio w_{i+1} / w_i for i = 1 .. n-1
    ratios = np.clip((n - i - k + 1) / (n - i), 0.0, None)
    desc = (k / n) * np.concatenate(([1.0], np.cumprod(ratios)))
    return desc[::-1].copy()


def best_of_k(scores: Sequence[float] | np.ndarray, k: int, *, reduce: str = "max") -> float:
    """Expected best (or mean) score of ``k`` runs drawn without replacement from ``scores``.

    ``score@k = Σ_i C(n−i, k−1)/C(n, k) · s_(i)`` with ``s_(1) ≥ s_(2) ≥ …``. With ``reduce="mean"``
    (tasks whose attempts are averaged, not picked) it is the plain mean, which is what the expected
    mean of a random k-subset equals.

    Args:
        scores: The n runs' scores.
        k: Number of runs drawn.
        reduce: ``"max"`` or ``"mean"``.

    Returns:
        The expected score.

    Raises:
        StatsError: Empty scores, NaN scores, ``k`` outside ``1..n``, unknown ``reduce``.
    """
    s = np.asarray(scores, dtype=float).ravel()
    _check_reduce(reduce)
    if s.size == 0:
        raise StatsError("best_of_k: no scores")
    if np.isnan(s).any():
        raise StatsError(f"best_of_k: {int(np.isnan(s).sum())} of {s.size} scores are NaN; "
                         "drop the runs that have no score or give them one")
    weights = best_of_k_weights(s.size, int(k))  # validates k
    if reduce == "mean":
        return float(s.mean())
    return float(np.sort(s) @ weights)


def _check_reduce(reduce: str) -> None:
    if reduce not in _REDUCES:
        raise StatsError(f"reduce must be one of {_REDUCES}, not {reduce!r}")


def budget_curve(
    runs: pd.DataFrame,
    budgets: Sequence[float],
    *,
    scores: pd.DataFrame | None = None,
    score: str | None = None,
    time_limit: float | Mapping[str, float] | None = None,
    by: str = "agent",
    pool_humans: bool = True,
    reduce: str | Mapping[str, str] = "max",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Best-of-k score against total time budget, per agent (and for human experts), with bootstrap CIs.

    For a budget ``B`` and runs with time limit ``L``: when ``B >= L``, ``k = B // L`` whole runs are
    drawn and the task's score is :func:`best_of_k` of the final scores; when ``B < L``, one run is cut at
    ``B`` of pause-free working time and scores the best score it had recorded by then (its timed
    intermediate scores from ``scores``, and its final score if it ended by ``B``; 0, the normalised
    starting score, before any). Task scores are averaged over the tasks the group has runs on.
    CIs resample runs with replacement within each task.

    Args:
        runs: One row per run, as :meth:`lab.traces.TraceStore.runs_frame` gives: ``run_id``, ``task``,
            ``is_human``, ``elapsed``, the ``by`` column, and the final score column.
        budgets: Total time budgets, in the unit of ``elapsed`` and the time limits (seconds).
        scores: Timed scores, as :meth:`~lab.traces.TraceStore.scores_frame` gives (``run_id``,
            ``scorer``, ``value``, ``elapsed``); needed for budgets below a run's time limit.
        score: The final-score column of ``runs`` (``score.<scorer>``); default: the only ``score.*``
            column. Intermediate scores are read for the same scorer.
        time_limit: Per-run time limit: one number, or one per group; default: a ``time_limit`` column
            of ``runs``, else ``config["time_limit"]``.
        by: Column naming the group (agent) a run belongs to.
        pool_humans: Put every human run in one group called ``human``.
        reduce: ``"max"``, ``"mean"``, or a mapping task → reduce (tasks may declare ``mean``).
        n_boot: Bootstrap resamples.
        level: Confidence level.
        seed: Random seed of the resampling.

    Returns:
        One row per group and budget: ``group``, ``is_human``, ``budget``, ``k``, ``score``, ``low``,
        ``high``, ``n_tasks``, ``n_runs``. A point where some task has fewer runs than ``k`` is NaN
        (with a :class:`~lab.stats.StatsWarning`).

    Raises:
        StatsError: Missing columns, no time limit, mixed time limits within a group,
            NaN final scores, non-positive budgets.
    """
    check_n_boot(n_boot)
    budgets_arr = np.asarray(budgets, dtype=float)
    if budgets_arr.ndim != 1 or budgets_arr.size == 0 or (budgets_arr <= 0).any():
        raise StatsError("budget_curve: budgets must be a non-empty list of positive numbers")
    runs = runs.reset_index(drop=True)
    df = _prepare_runs(runs, score=score, time_limit=time_limit, by=by, pool_humans=pool_humans)
    best_by = _best_by_budget(df, scores, budgets_arr, score_col=score or _score_column(runs))
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    for group, g in df.groupby("group", sort=True):
        est_sum = np.zeros(budgets_arr.size)
        boot_sum = np.zeros((n_boot, budgets_arr.size))
        short: set[str] = set()
        limits = g["time_limit"].unique()
        if limits.size != 1:
            raise StatsError(f"budget_curve: group {group!r} mixes time limits {sorted(limits)}; "
                             "split it (by=...) so each group has one")
        ks = np.floor(budgets_arr / limits[0]).astype(int)
        for task, t in g.groupby("task", sort=True):
            red = reduce.get(task, "max") if isinstance(reduce, Mapping) else reduce
            _check_reduce(red)
            est, boot, too_few = _task_curve(t, best_by, budgets_arr, ks, red, rng, n_boot)
            est_sum += est
            boot_sum += boot
            if too_few.any():
                short.add(str(task))
        n_tasks = g["task"].nunique()
        est_mean, boot_mean = est_sum / n_tasks, boot_sum / n_tasks
        lo, hi = percentile_ci(boot_mean, level)
        if short:
            warn(f"budget_curve: group {group!r} has fewer runs than k on task(s) {sorted(short)[:5]}; "
                 "those budgets are NaN")
        is_human = bool(g["is_human"].all())
        for j, b in enumerate(budgets_arr):
            rows.append({"group": group, "is_human": is_human, "budget": b, "k": max(int(ks[j]), 1),
                         "score": est_mean[j], "low": lo[j], "high": hi[j], "n_tasks": n_tasks, "n_runs": len(g)})
    return pd.DataFrame(rows)


def _score_column(runs: pd.DataFrame) -> str:
    cols = [c for c in runs.columns if str(c).startswith("score.")]
    if len(cols) != 1:
        raise StatsError(f"budget_curve: say which score column to use (score=...); found {cols or 'none'}")
    return cols[0]


def _prepare_runs(runs: pd.DataFrame, *, score: str | None, time_limit: Any, by: str,
                  pool_humans: bool) -> pd.DataFrame:
    runs = runs.reset_index(drop=True)
    score = score or _score_column(runs)
    missing = {"run_id", "task", "is_human", score, by} - set(runs.columns)
    if missing:
        raise StatsError(f"budget_curve: runs frame lacks column(s) {sorted(missing)}")
    df = runs[["run_id", "task", "is_human", by, score]].rename(columns={score: "final"}).copy()
    df["elapsed"] = runs["elapsed"] if "elapsed" in runs.columns else np.nan
    df["is_human"] = df["is_human"].astype(bool)
    df["group"] = df[by].astype(str)
    if pool_humans:
        df.loc[df["is_human"], "group"] = "human"
    df["time_limit"] = _time_limits(runs, df, time_limit)
    if df["final"].isna().any():
        bad = df.loc[df["final"].isna(), "run_id"].head(5).tolist()
        raise StatsError(f"budget_curve: {int(df['final'].isna().sum())} run(s) have no final {score!r} "
                         f"(e.g. {bad}); drop them or score them")
    return df


def _time_limits(runs: pd.DataFrame, df: pd.DataFrame, time_limit: Any) -> pd.Series:
    if isinstance(time_limit, Mapping):
        lim = df["group"].map(time_limit)
    elif time_limit is not None:
        lim = pd.Series(float(time_limit), index=df.index)
    elif "time_limit" in runs.columns:
        lim = runs["time_limit"]
    elif "config" in runs.columns:
        lim = runs["config"].map(lambda c: c.get("time_limit") if isinstance(c, dict) else None)
    else:
        lim = pd.Series(np.nan, index=df.index)
    lim = pd.to_numeric(lim, errors="coerce")
    if lim.isna().any() or (lim <= 0).any():
        groups = sorted(df.loc[lim.isna() | (lim <= 0), "group"].unique())[:5]
        raise StatsError(f"budget_curve: no positive time limit for runs of {groups}; pass time_limit=... "
                         "or give runs a time_limit column")
    return lim.astype(float)


def _best_by_budget(df: pd.DataFrame, scores: pd.DataFrame | None, budgets: np.ndarray,
                    score_col: str) -> np.ndarray:
    """``(n_runs, n_budgets)``: each run's best recorded score by each budget (0 before any)."""
    out = np.zeros((len(df), budgets.size))
    finished_by = df["elapsed"].to_numpy(float)[:, None] <= budgets[None, :]
    out = np.where(finished_by, df["final"].to_numpy(float)[:, None], out)
    if scores is not None and not scores.empty:
        scorer, _, dimension = score_col.removeprefix("score.").partition(".")
        sel = scores[(scores["scorer"] == scorer) & (scores["dimension"] == (dimension or "overall"))]
        sel = sel[sel["run_id"].isin(df["run_id"]) & sel["value"].notna()]
        if not sel.empty:
            row = pd.Series(np.arange(len(df)), index=df["run_id"].to_numpy())[sel["run_id"]].to_numpy()
            val = sel["value"].to_numpy(float)
            within = sel["elapsed"].to_numpy(float)[:, None] <= budgets[None, :]
            cand = np.where(within, val[:, None], -np.inf)
            best = np.full((len(df), budgets.size), -np.inf)
            np.maximum.at(best, row, cand)
            has = np.isfinite(best)
            out = np.where(has, np.maximum(np.where(finished_by, out, -np.inf), best), out)
    return out


def _task_curve(t: pd.DataFrame, best_by: np.ndarray, budgets: np.ndarray, ks: np.ndarray, reduce: str,
                rng: np.random.Generator, n_boot: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One task's point estimates ``(n_budgets,)`` and bootstrap replicates ``(n_boot, n_budgets)``."""
    n = len(t)
    final = t["final"].to_numpy(float)
    order = np.argsort(final, kind="stable")
    pos = t.index.to_numpy()[order]  # runs in ascending order of final score
    asc = final[order]
    # a resample draws run positions in that order, so sorting them sorts the resampled scores
    draws = resample_indices(rng, n, n_boot)
    est = np.empty(budgets.size)
    boot = np.empty((n_boot, budgets.size))
    too_few = ks > n
    cut = ks < 1  # budget below the time limit: one run, cut at the budget
    for j in np.flatnonzero(cut):
        vals = best_by[pos, j]
        est[j] = vals.mean()
        boot[:, j] = vals[draws].mean(axis=1)
    whole = np.flatnonzero(~cut & ~too_few)
    if whole.size:
        if reduce == "mean":
            est[whole] = asc.mean()
            boot[:, whole] = asc[draws].mean(axis=1)[:, None]
        else:
            weights = np.stack([best_of_k_weights(n, int(k)) for k in ks[whole]], axis=1)  # (n, K)
            est[whole] = asc @ weights
            boot[:, whole] = asc[np.sort(draws, axis=1, kind="stable")] @ weights
    est[too_few] = np.nan
    boot[:, too_few] = np.nan
    return est, boot, too_few
