"""The human-vs-AI dashboard's data, as pandas frames read from the store's scores: who is a contestant,
judge-vs-expert grade pairs, score timelines for budget curves, pairwise comparisons for ratings.

Statistics on these frames come from :mod:`lab.stats`; this module only selects and reshapes.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from lab.traces import TraceStore

HUMAN = "human"
MODEL = "model"


def contestant(agent: str | None, model: str | None, is_human: bool) -> str:
    """The name a run competes under: ``human:<expert>`` for a human expert, else ``<loop>/<model>``."""
    if is_human:
        m = str(model or agent or "human")
        return m if m.startswith("human") else f"human:{m}"
    return f"{agent or '?'}/{model or '?'}"


def with_contestants(scores: pd.DataFrame) -> pd.DataFrame:
    """``scores`` (from ``TraceStore.scores_frame``) with a ``contestant`` column."""
    names = [contestant(a, m, h) for a, m, h in zip(scores["agent"], scores["model"], scores["is_human"])]
    return scores.assign(contestant=names)


def graders(scores: pd.DataFrame, provenance: str) -> list[str]:
    """Sources of rubric grades of one provenance (``model`` judges, ``human`` experts), pairwise excluded."""
    rows = scores[(scores["provenance"] == provenance) & scores["value"].notna() & (scores["scorer"] != "preference")]
    return sorted(rows["source"].dropna().unique())


def dimensions(scores: pd.DataFrame) -> list[str]:
    """Rubric dimensions graded by a judge or an expert."""
    rows = scores[scores["provenance"].isin([HUMAN, MODEL]) & (scores["scorer"] != "preference")]
    return sorted(rows["dimension"].unique())


def grades(scores: pd.DataFrame, *, source: str | None = None, provenance: str | None = None,
           dimension: str) -> pd.Series:
    """One grader's (or a provenance's mean) grade per run on one dimension (last grade of a run wins)."""
    rows = scores[(scores["dimension"] == dimension) & scores["value"].notna() & (scores["scorer"] != "preference")]
    if source is not None:
        rows = rows[rows["source"] == source]
    if provenance is not None:
        rows = rows[rows["provenance"] == provenance]
    if source is not None:
        return rows.groupby("run_id")["value"].last()
    return rows.groupby(["run_id", "source"])["value"].last().groupby("run_id").mean()


def grade_pairs(scores: pd.DataFrame, a: pd.Series, b: pd.Series) -> pd.DataFrame:
    """Runs graded by both sides: ``run_id, a, b, gap`` plus the run's task and contestant, largest gap first."""
    both = pd.concat({"a": a, "b": b}, axis=1, join="inner").dropna()
    runs = with_contestants(scores.drop_duplicates("run_id")).set_index("run_id")[["task", "contestant"]]
    both = both.join(runs, how="left").assign(gap=lambda d: (d["a"] - d["b"]).abs())
    return both.reset_index().sort_values(["gap", "run_id"], ascending=[False, True], kind="stable")


def confusion(pairs: pd.DataFrame) -> pd.DataFrame:
    """Counts of (judge grade, expert grade) rounded to integers, long form for a heatmap."""
    if pairs.empty:
        return pd.DataFrame(columns=["a", "b", "count"])
    c = pairs.assign(a=pairs["a"].round().astype(int), b=pairs["b"].round().astype(int))
    return c.groupby(["a", "b"]).size().rename("count").reset_index()


def numeric_scorers(scores: pd.DataFrame) -> list[str]:
    """Rule scorers with numeric values on the ``overall`` dimension — what a budget curve can show."""
    rows = scores[(scores["provenance"] == "rule") & (scores["dimension"] == "overall") & scores["value"].notna()]
    return sorted(rows["scorer"].unique())


def timeline(scores: pd.DataFrame, scorer: str) -> pd.DataFrame:
    """Every value of ``scorer`` (intermediate and final) with the working time it was reached at:
    ``run_id, task, contestant, is_human, elapsed, value``."""
    rows = with_contestants(scores[(scores["scorer"] == scorer) & scores["value"].notna()])
    return rows[["run_id", "task", "contestant", "is_human", "elapsed", "value"]].reset_index(drop=True)


def comparisons(store: TraceStore, runs: pd.DataFrame) -> pd.DataFrame:
    """Pairwise preferences as ``dimension, a, b, outcome, source`` (outcome 1: a won, 0: b won, 0.5: tie),
    one row per judgement, contestants named by :func:`contestant`. Each judgement is stored on both runs
    (``details.opponent`` names the other); the copy on the smaller run id is kept."""
    rows = store.query(
        "SELECT s.run_id, s.dimension, s.value, s.source, e.attrs FROM scores s"
        " JOIN events e ON e.run_id = s.run_id AND e.seq = s.seq"
        " WHERE s.scorer = 'preference' AND s.value IS NOT NULL")
    name = {r: contestant(a, m, h) for r, a, m, h in zip(runs["run_id"], runs["agent"], runs["model"], runs["is_human"])}
    out = []
    for run, dim, value, source, attrs in rows:
        opp = (json.loads(attrs).get("lab.score.details") or {}).get("opponent")
        if opp in name and run < opp:
            out.append((dim, name[run], name[opp], value, source))
    return pd.DataFrame(out, columns=["dimension", "a", "b", "outcome", "source"])


def rubric(scores: pd.DataFrame, scorer: str = "expert") -> dict[str, tuple[int, int]]:
    """The rubric experts have used so far: dimension → (lowest, highest) grade seen (at least 1–5)."""
    rows = scores[(scores["provenance"] == HUMAN) & (scores["scorer"] == scorer) & scores["value"].notna()]
    return {d: (min(1, int(g["value"].min())), max(5, int(math.ceil(g["value"].max()))))
            for d, g in rows.groupby("dimension")}
