"""pandas views of a trace store: runs, events and scores, one row per thing."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pandas as pd

from lab.traces.errors import StoreError

if TYPE_CHECKING:
    from lab.traces.store import TraceStore

_EVENT_COLS = ["run_id", "seq", "ts", "elapsed", "kind", "span_id", "parent_id", "agent", "attrs"]
_decode = json.JSONDecoder().decode
_SCORE_COLS = ["run_id", "seq", "item_id", "scorer", "dimension", "value", "label", "provenance",
               "source", "final", "elapsed", "ts"]


def events_frame(store: TraceStore, run_id: str | None = None, *, expand: bool = False) -> pd.DataFrame:
    """Events in order; ``attrs`` parsed to dicts, or expanded into one column per key."""
    sql = f"SELECT {','.join(_EVENT_COLS)} FROM events"
    args: tuple[str, ...] = ()
    if run_id is not None:
        sql += " WHERE run_id=?"
        args = (run_id,)
    sql += " ORDER BY run_id, seq"
    rows = store.query(sql, args)
    df = pd.DataFrame.from_records(rows, columns=_EVENT_COLS)
    attrs = [_decode(r[8]) for r in rows]
    if expand:
        extra = pd.DataFrame.from_records(attrs, index=df.index) if attrs else pd.DataFrame(index=df.index)
        df = pd.concat([df.drop(columns="attrs"), extra], axis=1)
    else:
        df["attrs"] = attrs
    return df


def scores_frame(store: TraceStore, *, final_only: bool = False) -> pd.DataFrame:
    """Scores with provenance, plus the run's task, agent, model and whether it was a human."""
    sql = (f"SELECT {','.join('s.' + c for c in _SCORE_COLS)}, r.task, r.agent, r.model, r.is_human,"
           " r.status FROM scores s JOIN runs r USING (run_id)")
    if final_only:
        sql += " WHERE s.final=1"
    sql += " ORDER BY s.run_id, s.seq"
    df = pd.DataFrame.from_records(store.query(sql), columns=[*_SCORE_COLS, "task", "agent", "model",
                                                                 "is_human", "status"])
    df["final"] = df["final"].astype(bool)
    df["is_human"] = df["is_human"].astype(bool)
    df["item_id"] = df["item_id"].fillna(df["task"])
    return df


def runs_frame(store: TraceStore, *, with_scores: bool = True) -> pd.DataFrame:
    """Runs, one row each; final scores as ``score.<scorer>`` (``score.<scorer>.<dimension>``)."""
    runs = pd.DataFrame(store.list_runs())
    if runs.empty:
        return pd.DataFrame(columns=["run_id", "task", "agent", "model", "status", "is_human", "elapsed"])
    if not with_scores:
        return runs
    scores = scores_frame(store, final_only=True)
    if scores.empty:
        return runs
    scores = scores.assign(
        column=["score." + s if d == "overall" else f"score.{s}.{d}"
                for s, d in zip(scores["scorer"], scores["dimension"], strict=True)]
    )
    last = scores.groupby(["run_id", "column"], sort=False)["value"].last().unstack("column")
    return runs.merge(last, how="left", left_on="run_id", right_index=True)


def final_score_means(store: TraceStore, *, by: str | list[str] = "agent", scorers: list[str] | None = None,
                      missing: float | None = 0.0) -> pd.DataFrame:
    """Mean final score per group of runs (e.g. per agent configuration), one column per scorer.

    Args:
        store: Where the runs are.
        by: Run column(s) to group by (``agent``, ``model``, ``batch_id``, ``is_human`` ...).
        scorers: Scorer names to include (default: every scorer with a final score).
        missing: What a run without a value counts as (a null score, or none at all); SUPER's
            published aggregates count it as 0. ``None`` averages only the runs that have a value.

    Returns:
        One row per group; a ``runs`` column (how many runs) and one column per scorer.
    """
    runs = runs_frame(store)
    keys = [by] if isinstance(by, str) else list(by)
    if runs.empty:
        return pd.DataFrame(columns=["runs", *(scorers or [])])
    cols = [c for c in runs.columns if c.startswith("score.")]
    names = [c.removeprefix("score.") for c in cols]
    if scorers is not None:
        unknown = sorted(set(scorers) - set(names))
        if unknown:
            raise StoreError(f"no final scores named {', '.join(unknown)} in {store.path}")
        cols, names = [f"score.{s}" for s in scorers], list(scorers)
    values = runs[cols].astype(float)
    if missing is not None:
        values = values.fillna(missing)
    out = values.groupby([runs[k] for k in keys]).mean()
    out.columns = names
    out.insert(0, "runs", runs.groupby(keys).size())
    return out
