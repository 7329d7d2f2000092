"""Benchmark of lab.stats: vectorised bootstrap vs a plain per-resample Python loop, in the same run.

1. Best-of-k budget curves: 1,000 bootstrap resamples, 10 tasks, 8 budgets, 10,000 runs
   (``--runs-per-task`` sets the size: 1,000 per task = 10,000 runs in all; 10,000 per task is the
   stress case). Ours: ``lab.stats.budget_curve`` end to end from a runs DataFrame.
   Baseline: for each of the 1,000 resamples and each task, draw runs, sort, call ``best_of_k`` per budget
   (``--quick`` times it over 50 resamples and scales).
2. Agreement with bootstrap CIs over 100,000 paired grades (1–5 scale), every ordinal measure
   (percent agreement, kappa, weighted kappa, Krippendorff's alpha, macro P/R/F1, Pearson, Spearman,
   Kendall tau-b, RMSE, MAE). Ours: ``lab.stats.agreement``. Baseline: per resample, the same measures from
   scikit-learn / scipy / krippendorff on the resampled items. The baseline is timed over
   ``--baseline-resamples`` resamples and scaled linearly to 1,000 (its cost is linear in resamples).

Usage: .venv/bin/python bench/stats_bench.py [--runs-per-task N] [--baseline-resamples M] [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import krippendorff
import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import cohen_kappa_score, precision_recall_fscore_support

from lab.stats import agreement, best_of_k, budget_curve

N_BOOT = 1000
TASKS = 10
HOUR = 3600.0
BUDGETS = [HOUR * 2 ** i for i in range(8)]  # 1 h .. 128 h with 1-hour runs: k = 1 .. 128


def runs_table(runs_per_task: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = runs_per_task * TASKS
    return pd.DataFrame({
        "run_id": [f"r{i}" for i in range(n)], "task": np.repeat([f"task{t}" for t in range(TASKS)], runs_per_task),
        "agent": "agent", "is_human": False, "elapsed": HOUR, "time_limit": HOUR,
        "score.score": rng.beta(2, 5, size=n),
    })


def best_of_k_loop(runs: pd.DataFrame, n_boot: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    by_task = [g["score.score"].to_numpy() for _, g in runs.groupby("task")]
    ks = [int(b // HOUR) for b in BUDGETS]
    out = np.empty((n_boot, len(ks)))
    for b in range(n_boot):
        per_task = []
        for s in by_task:
            sample = s[rng.integers(0, s.size, s.size)]
            per_task.append([best_of_k(sample, k) for k in ks])
        out[b] = np.mean(per_task, axis=0)
    return out


def grades(n: int, seed: int = 0) -> tuple[pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 6, n)
    b = np.clip(a + rng.choice([-1, 0, 0, 1], n), 1, 5)
    return pd.Series(a), pd.Series(b)


def agreement_loop(a: np.ndarray, b: np.ndarray, n_boot: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    labels = [1, 2, 3, 4, 5]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(n_boot):
            idx = rng.integers(0, a.size, a.size)
            x, y = a[idx], b[idx]
            np.mean(x == y)
            cohen_kappa_score(x, y, labels=labels)
            cohen_kappa_score(x, y, labels=labels, weights="quadratic")
            precision_recall_fscore_support(y, x, average="macro", zero_division=0)
            krippendorff.alpha(np.vstack([x, y]).astype(float), value_domain=labels, level_of_measurement="ordinal")
            stats.pearsonr(x, y), stats.spearmanr(x, y), stats.kendalltau(x, y)
            np.sqrt(np.mean((x - y) ** 2)), np.mean(np.abs(x - y))


def timed(fn, *args, **kw) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn(*args, **kw)
    return time.perf_counter() - t, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-per-task", type=int, default=1000)
    ap.add_argument("--baseline-resamples", type=int, default=50)
    ap.add_argument("--quick", action="store_true", help="time the best-of-k baseline over 50 resamples only")
    args = ap.parse_args()

    rows = []
    runs = runs_table(args.runs_per_task)
    budget_curve(runs.head(100), BUDGETS[:3], n_boot=10)  # warm-up (imports)
    t_ours, curve = timed(budget_curve, runs, BUDGETS, n_boot=N_BOOT)
    nb = 50 if args.quick else N_BOOT
    t_base, base = timed(best_of_k_loop, runs, nb)
    t_base_full = t_base * N_BOOT / nb
    # the same estimator: the two bootstrap CI widths agree (up to resampling noise)
    width_ours = (curve["high"] - curve["low"]).to_numpy()
    width_base = np.quantile(base, 0.975, axis=0) - np.quantile(base, 0.025, axis=0)
    diff = float(np.max(np.abs(width_ours - width_base) / width_base)) if nb == N_BOOT else np.nan
    rows.append((f"best-of-k curves: {len(runs):,} runs ({TASKS} tasks) x {len(BUDGETS)} budgets, {N_BOOT} resamples",
                 t_ours, t_base_full, nb, diff))

    a, b = grades(100_000)
    agreement(a.head(1000), b.head(1000), n_boot=10)  # warm-up
    t_ours, res = timed(agreement, a, b, n_boot=N_BOOT)
    t_base, _ = timed(agreement_loop, a.to_numpy(), b.to_numpy(), args.baseline_resamples)
    rows.append((f"agreement, {len(res.measures)} measures: 100,000 paired grades, {N_BOOT} resamples",
                 t_ours, t_base * N_BOOT / args.baseline_resamples, args.baseline_resamples, np.nan))

    print("| benchmark | ours (s) | per-resample loop (s) | speed-up | loop timed over | CI width diff |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, ours, base_s, n, diff in rows:
        scaled = "" if n == N_BOOT else f" (scaled from {n})"
        d = "" if np.isnan(diff) else f"{diff:.1%}"
        print(f"| {name} | {ours:.3f} | {base_s:.1f}{scaled} | {base_s / ours:.0f}x | {n} resamples | {d} |")


if __name__ == "__main__":
    main()
