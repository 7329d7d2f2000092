"""Human-vs-AI dashboard: best-of-k score against time budget with CI bands, judge-vs-expert agreement with
CIs, a confusion matrix and the most-disagreeing items (each opens its trace), per-expert views, and an
Elo / Bradley–Terry leaderboard per dimension. Statistics come from :mod:`lab.stats`."""

from __future__ import annotations

import importlib
import math
import warnings
from collections.abc import Callable
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import panel as pn
import param

from lab.errors import LabError
from lab.traces import TraceStore
from widgets import study_data as sd
from widgets.notice import notice

ALL_EXPERTS = "all experts (mean)"


def lab_stat(name: str) -> Callable[..., Any] | None:
    """A function of :mod:`lab.stats`, or ``None`` when this installation does not have it."""
    try:
        return getattr(importlib.import_module("lab.stats"), name, None)
    except ImportError:
        return None


def _unavailable(what: str, name: str) -> pn.pane.Alert:
    return notice(f"{what} is unavailable: this installation of `lab.stats` has no `{name}` yet.", "warning")


def agreement_frame(result: Any) -> pd.DataFrame:
    """``lab.stats.agreement``'s result as rows ``statistic, estimate, low, high``."""
    if isinstance(result, pd.DataFrame):
        return result.reset_index(drop=result.index.name is None)
    items = result.items() if isinstance(result, dict) else vars(result).items()
    rows = []
    for name, v in items:
        if hasattr(v, "estimate"):
            rows.append({"statistic": name, "estimate": v.estimate, "low": v.low, "high": v.high})
        elif isinstance(v, (int, float)):
            rows.append({"statistic": name, "estimate": float(v), "low": math.nan, "high": math.nan})
    return pd.DataFrame(rows)


class HumanVsAIDashboard(param.Parameterized):
    """Compare agents with human experts, and LLM judges with expert graders.

    Args:
        store: The trace store to read.
        **params: ``scorer`` (budget curves), ``judge``, ``expert``, ``dimension``, ``n_boot``, ``seed``.
    """

    scorer = param.Selector(default=None, objects=[], doc="Scorer whose values make the budget curve.")
    judge = param.Selector(default=None, objects=[], doc="LLM judge (source of model grades).")
    expert = param.Selector(default=ALL_EXPERTS, objects=[ALL_EXPERTS], doc="Expert grader compared with the judge.")
    dimension = param.Selector(default=None, objects=[], doc="Rubric dimension.")
    n_boot = param.Integer(default=500, bounds=(50, 10000), doc="Bootstrap resamples for CIs.")
    seed = param.Integer(default=0, doc="Seed of the bootstrap.")
    open_run = param.String(default="", doc="Run clicked in the most-disagreeing list (drives the trace viewer).")
    version = param.Integer(default=0, precedence=-1, doc="Bumped on reload.")

    def __init__(self, store: TraceStore, **params) -> None:
        self.store = store
        self.scores = pd.DataFrame()
        self.runs = pd.DataFrame()
        super().__init__(**params)
        self.reload()

    def reload(self) -> None:
        """Read scores and runs again and refresh the choices."""
        self.scores = self.store.scores_frame()
        self.runs = self.store.runs_frame()
        judges, experts = sd.graders(self.scores, sd.MODEL), sd.graders(self.scores, sd.HUMAN)
        dims, scorers = sd.dimensions(self.scores), sd.numeric_scorers(self.scores)
        for name, objs in (("judge", judges), ("dimension", dims), ("scorer", scorers),
                           ("expert", [ALL_EXPERTS, *experts])):
            self.param[name].objects = objs
            if getattr(self, name) not in objs:
                setattr(self, name, objs[0] if objs else None)
        self.version += 1

    # -- data ----------------------------------------------------------------------------------

    def expert_grades(self, expert: str | None = None) -> pd.Series:
        expert = expert or self.expert
        if expert == ALL_EXPERTS:
            return sd.grades(self.scores, provenance=sd.HUMAN, dimension=self.dimension)
        return sd.grades(self.scores, source=expert, provenance=sd.HUMAN, dimension=self.dimension)

    def judge_pairs(self) -> pd.DataFrame:
        """Runs graded by the judge (``a``) and the expert(s) (``b``) on the chosen dimension."""
        judge = sd.grades(self.scores, source=self.judge, provenance=sd.MODEL, dimension=self.dimension)
        return sd.grade_pairs(self.scores, judge, self.expert_grades())

    def agreement(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """``lab.stats.agreement`` of the pairs as a table (what the dashboard shows)."""
        fn = lab_stat("agreement")
        return agreement_frame(fn(pairs["a"].to_numpy(), pairs["b"].to_numpy(), n_boot=self.n_boot, seed=self.seed))

    def budget_curves(self) -> pd.DataFrame:
        """``lab.stats.budget_curve`` per contestant (human experts pooled) over budgets spanning the runs'
        working times."""
        fn = lab_stat("budget_curve")
        runs = self.runs.assign(contestant=[sd.contestant(a, m, h) for a, m, h in
                                            zip(self.runs["agent"], self.runs["model"], self.runs["is_human"])])
        col = f"score.{self.scorer}"
        runs = runs[runs[col].notna()] if col in runs.columns else runs.iloc[0:0]
        limits = runs["config"].map(lambda c: (c or {}).get("time_limit"))
        runs = runs.assign(time_limit=pd.to_numeric(limits, errors="coerce").fillna(runs["elapsed"].max()))
        lo, hi = float(runs["time_limit"].min()), float(runs["time_limit"].max())
        budgets = np.unique(np.geomspace(lo / 8, hi * 4, 24).round(1))
        with warnings.catch_warnings():  # budgets needing more runs than a task has come back NaN; not drawn
            warnings.simplefilter("ignore")
            return fn(runs, budgets, scores=self.scores, score=col, by="contestant", n_boot=self.n_boot,
                      seed=self.seed)

    # -- views ---------------------------------------------------------------------------------

    @param.depends("scorer", "version")
    def budget_view(self) -> pn.viewable.Viewable:
        """Best-of-k score against time budget, one line per agent and one for human experts, CI bands."""
        if self.scores.empty:
            return notice("No scores in the store yet: score some runs to see budget curves.", "info")
        if self.scorer is None:
            labels = sorted(self.scores.loc[self.scores["label"].notna(), "scorer"].unique())
            return notice("No numeric score to chart against time"
                          + (f" (scorers {', '.join(labels)} give labels only)." if labels else "."), "info")
        if lab_stat("budget_curve") is None:
            return _unavailable("The budget curve", "budget_curve")
        try:
            curve = self.budget_curves()
        except LabError as e:
            return notice(f"Cannot draw budget curves for `{self.scorer}`: {e}", "warning")
        curve = curve.dropna(subset=["score"])
        if curve.empty:
            return notice(f"`{self.scorer}` has too few runs per task for a budget curve.", "info")
        base = alt.Chart(curve).encode(
            x=alt.X("budget:Q", scale=alt.Scale(type="log"), title="time budget (s, pause-free)"),
            color=alt.Color("group:N", title="agent / humans"))
        band = base.mark_area(opacity=0.2).encode(y=alt.Y("low:Q", title=f"best-of-k {self.scorer}"), y2="high:Q")
        line = base.mark_line(point=True).encode(y="score:Q", tooltip=["group", "budget", "k", "score", "low", "high",
                                                                      "n_tasks", "n_runs"])
        return pn.pane.Vega((band + line).properties(width=620, height=300, title="best-of-k vs time budget"),
                            css_classes=["lab-budget-chart"])

    @param.depends("judge", "expert", "dimension", "n_boot", "version")
    def agreement_view(self) -> pn.viewable.Viewable:
        """Judge-vs-expert agreement with CIs, the confusion matrix, and the most-disagreeing items."""
        if self.judge is None or len(self.param.expert.objects) < 2:
            return notice("Agreement needs grades from an LLM judge and from at least one human expert "
                          "(grade some runs in the grading tab).", "info")
        pairs = self.judge_pairs()
        if len(pairs) < 2:
            return notice(f"Only {len(pairs)} run(s) graded by both `{self.judge}` and {self.expert} on "
                          f"`{self.dimension}`; agreement needs at least 2.", "info")
        if lab_stat("agreement") is None:
            table: pn.viewable.Viewable = _unavailable("Judge-vs-expert agreement", "agreement")
        else:
            try:
                table = pn.widgets.Tabulator(self.agreement(pairs).round(4), disabled=True, show_index=False,
                                             css_classes=["lab-agreement-table"], sizing_mode="stretch_width")
            except LabError as e:
                table = notice(f"Agreement cannot be computed: {e}", "warning")
        conf = sd.confusion(pairs)
        heat = alt.Chart(conf).encode(x=alt.X("b:O", title=f"expert ({self.expert})"),
                                      y=alt.Y("a:O", title=f"judge ({self.judge})", sort="descending"))
        chart = (heat.mark_rect().encode(color=alt.Color("count:Q", scale=alt.Scale(scheme="blues")))
                 + heat.mark_text().encode(text="count:Q")).properties(width=260, height=220, title="confusion matrix")
        worst = pn.widgets.Tabulator(
            pairs.rename(columns={"a": "judge", "b": "expert"}).head(50), disabled=True, show_index=False,
            height=260, sizing_mode="stretch_width", css_classes=["lab-disagreements"],
            hidden_columns=[], selectable=False)
        worst.on_click(lambda e: setattr(self, "open_run", worst.value["run_id"].iloc[e.row]))
        return pn.Column(
            pn.pane.Markdown(f"**{len(pairs)} runs** graded by judge `{self.judge}` and {self.expert} "
                             f"on `{self.dimension}`"),
            table,
            pn.Row(pn.pane.Vega(chart, css_classes=["lab-confusion"]),
                   pn.Column(pn.pane.Markdown("**Most disagreeing** (click a row to open its trace)"), worst,
                             sizing_mode="stretch_width")),
            sizing_mode="stretch_width")

    @param.depends("expert", "dimension", "scorer", "n_boot", "version")
    def expert_view(self) -> pn.viewable.Viewable:
        """One expert against the agents on the expert's own tasks, and expert-vs-expert agreement."""
        experts = self.param.expert.objects[1:]
        if not experts:
            return notice("No human expert has graded or attempted anything yet.", "info")
        expert = self.expert if self.expert != ALL_EXPERTS else experts[0]
        parts: list = [pn.pane.Markdown(f"### Expert `{expert}`")]
        col = f"score.{self.scorer}" if self.scorer else None
        if col and col in self.runs.columns:
            runs = self.runs.assign(contestant=[sd.contestant(a, m, h) for a, m, h in
                                                zip(self.runs["agent"], self.runs["model"], self.runs["is_human"])])
            own = runs[runs["contestant"] == f"human:{expert}"]
            agents = runs[~runs["is_human"] & runs["task"].isin(own["task"])]
            if own.empty:
                parts.append(notice(f"`{expert}` has no runs of their own (only grades).", "info"))
            else:
                table = own.groupby("task")[col].max().rename(f"{expert}").to_frame().join(
                    agents.groupby("task")[col].agg(["mean", "max"]).add_prefix("agents "), how="left")
                parts.append(pn.widgets.Tabulator(table.round(3).reset_index(), disabled=True, show_index=False,
                                                  sizing_mode="stretch_width", css_classes=["lab-expert-vs-agents"]))
        fn = lab_stat("agreement")
        if len(experts) > 1 and fn is not None:
            rows = []
            for other in experts:
                if other == expert:
                    continue
                pairs = sd.grade_pairs(self.scores, self.expert_grades(expert), self.expert_grades(other))
                if len(pairs) >= 2:
                    stats = agreement_frame(fn(pairs["a"].to_numpy(), pairs["b"].to_numpy(), n_boot=self.n_boot,
                                               seed=self.seed)).set_index("statistic")["estimate"]
                    rows.append({"other expert": other, "n": len(pairs), **stats.round(3).to_dict()})
            if rows:
                parts += [pn.pane.Markdown(f"**`{expert}` vs the other experts** on `{self.dimension}`"),
                          pn.widgets.Tabulator(pd.DataFrame(rows), disabled=True, show_index=False,
                                               sizing_mode="stretch_width")]
        elif fn is None:
            parts.append(_unavailable("Expert-vs-expert agreement", "agreement"))
        return pn.Column(*parts, sizing_mode="stretch_width")

    @param.depends("version")
    def leaderboard_view(self) -> pn.viewable.Viewable:
        """Elo and Bradley–Terry ratings of contestants from pairwise preferences, per dimension."""
        comps = sd.comparisons(self.store, self.runs) if not self.runs.empty else pd.DataFrame()
        if comps.empty:
            return notice("No pairwise preferences yet (grade pairs in the grading tab).", "info")
        fn = lab_stat("leaderboard")
        if fn is None:
            return _unavailable("The Elo / Bradley–Terry leaderboard", "leaderboard")
        tabs = pn.Tabs(sizing_mode="stretch_width")
        for dim, c in comps.groupby("dimension"):
            board = fn(c, seed=self.seed)
            tabs.append((dim, pn.widgets.Tabulator(board.round(3), disabled=True, show_index=False,
                                                   sizing_mode="stretch_width", css_classes=["lab-leaderboard"])))
        return tabs

    def panel(self) -> pn.viewable.Viewable:
        controls = pn.Row(*(pn.widgets.Select.from_param(self.param[n], width=180)
                            for n in ("scorer", "judge", "expert", "dimension")))
        return pn.Column(
            controls,
            pn.Card(self.budget_view, title="Best-of-k vs time budget", sizing_mode="stretch_width"),
            pn.Card(self.agreement_view, title="Judge vs experts", sizing_mode="stretch_width"),
            pn.Card(self.expert_view, title="Per expert", sizing_mode="stretch_width"),
            pn.Card(self.leaderboard_view, title="Leaderboard (Elo / Bradley–Terry)", sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self.panel()
