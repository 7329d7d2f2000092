"""The human-vs-AI dashboard's data, as pandas frames read from the store's scores: who is a contestant,
judge-vs-expert grade pairs, score timelines for budget curves, pairwise comparisons for ratings.

Statistics on these frames come from :mod:`lab.stats`; this module only selects and reshapes.
"""

from __future__ import annotations

import json
import math

import pandas as pd

from lab.stats import majority, ratings_table
from lab.traces import TraceStore, schema

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


def grades(scores: pd.DataFrame, *, provenance: str, dimension: str, source: str | None = None) -> pd.Series:
    """Grades per run on one dimension: one grader's (``source``), or the majority grade of every grader of
    that provenance (``lab.stats.majority``). A grader's last grade of a run wins. Indexed by run id."""
    rows = scores[(scores["provenance"] == provenance) & scores["value"].notna() & (scores["scorer"] != "preference")]
    if source is not None:
        rows = rows[rows["source"] == source]
    if rows.empty:
        return pd.Series(dtype=float, name=source or provenance)
    table = ratings_table(rows, by="source", item="run_id", dimension=dimension, agg="last")
    out = table[source] if source is not None else majority(table)
    return out.dropna().rename(source or f"{provenance} majority")


def numeric_scorers(scores: pd.DataFrame) -> list[str]:
    """Rule scorers with numeric values on the ``overall`` dimension — what a budget curve can show."""
    rows = scores[(scores["provenance"] == "rule") & (scores["dimension"] == "overall") & scores["value"].notna()]
    return sorted(rows["scorer"].unique())


def scorers_with_humans(runs: pd.DataFrame, scorers: list[str]) -> list[str]:
    """Those of ``scorers`` that gave a final score to both a human expert's run and an AI run (what a
    human-vs-AI chart needs), in the given order."""
    out = []
    for s in scorers:
        col = f"score.{s}"
        if col in runs.columns:
            scored = runs.loc[runs[col].notna(), "is_human"]
            if scored.any() and not scored.all():
                out.append(s)
    return out


def comparisons(store: TraceStore, runs: pd.DataFrame) -> pd.DataFrame:
    """Pairwise preferences in ``lab.stats.elo``'s shape: ``dimension, model_a, model_b, winner, source``
    (winner ``a``, ``b`` or ``tie``), one row per judgement, contestants named by :func:`contestant`. Each
    judgement is stored on both runs (``details.opponent`` names the other); the copy on the smaller run id
    is kept, and judgements between two runs of the same contestant are left out (they rate nothing)."""
    rows = store.query(
        "SELECT s.run_id, s.dimension, s.value, s.source, e.attrs FROM scores s"
        " JOIN events e ON e.run_id = s.run_id AND e.seq = s.seq"
        " WHERE s.scorer = 'preference' AND s.value IS NOT NULL")
    name = {r: contestant(a, m, h) for r, a, m, h in zip(runs["run_id"], runs["agent"], runs["model"], runs["is_human"])}
    out = []
    for run, dim, value, source, attrs in rows:
        opp = (json.loads(attrs).get(schema.SCORE_DETAILS) or {}).get("opponent")
        if opp in name and run < opp and name[run] != name[opp]:
            winner = "a" if value > 0.5 else "b" if value < 0.5 else "tie"
            out.append((dim, name[run], name[opp], winner, source))
    return pd.DataFrame(out, columns=["dimension", "model_a", "model_b", "winner", "source"])


def rubric(store: TraceStore, scorer: str = "expert") -> dict[str, tuple[int, int]]:
    """The rubric experts have used so far: dimension → (lowest, highest) grade seen (at least 1–5)."""
    rows = store.query("SELECT dimension, MIN(value), MAX(value) FROM scores WHERE provenance='human' AND scorer=?"
                       " AND value IS NOT NULL GROUP BY dimension", (scorer,))
    return {d: (min(1, int(lo)), max(5, int(math.ceil(hi)))) for d, lo, hi in rows}
