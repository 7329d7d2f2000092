"""Human-vs-AI dashboard: best-of-k score against time budget with CI bands, judge-vs-expert agreement with
CIs, a confusion matrix and the most-disagreeing items (each opens its trace), per-expert views, and an
Elo / Bradley–Terry leaderboard per dimension. Statistics come from :mod:`lab.stats`."""

from __future__ import annotations

import warnings

import altair as alt
import numpy as np
import pandas as pd
import panel as pn
import param
from panel.models.vega import VEGA_LITE_VERSION

from lab.errors import LabError
from lab.stats import Agreement, agreement, bradley_terry, budget_curve, elo
from lab.traces import TraceStore
from widgets import study_data as sd
from widgets.notice import notice

ALL_EXPERTS = "all experts (majority)"


def vega(chart: alt.TopLevelMixin, **params) -> pn.pane.Vega:
    """A Vega pane for an Altair chart, its spec marked with the Vega-Lite version Panel bundles (Altair may
    be newer, and the browser would warn about the version on every chart)."""
    spec = chart.to_dict()
    spec["$schema"] = f"https://vega.github.io/schema/vega-lite/v{VEGA_LITE_VERSION}.json"
    return pn.pane.Vega(spec, **params)


def _duration(seconds: float) -> str:
    """``1800`` → ``30m``, ``7200`` → ``2h``."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


class HumanVsAIDashboard(pn.viewable.Viewer):
    """Compare agents with human experts, and LLM judges with expert graders.

    Args:
        store: The trace store to read.
        lazy: Read the store when first shown rather than now.
        **params: ``scorer`` (budget curves), ``judge``, ``expert``, ``dimension``, ``n_boot``, ``seed``.
    """

    scorer: param.Selector[str | None] = param.Selector(default=None, objects=[],
                                                        doc="Scorer whose values make the budget curve.")
    judge: param.Selector[str | None] = param.Selector(default=None, objects=[],
                                                       doc="LLM judge (source of model grades).")
    expert: param.Selector[str] = param.Selector(default=ALL_EXPERTS, objects=[ALL_EXPERTS],
                                                 doc="Expert grader compared with the judge.")
    dimension: param.Selector[str | None] = param.Selector(default=None, objects=[], doc="Rubric dimension.")
    n_boot = param.Integer(default=500, bounds=(50, 10000), doc="Bootstrap resamples for CIs.")
    rating_boot = param.Integer(default=100, bounds=(0, 10000), doc="Bootstrap resamples for rating CIs.")
    seed = param.Integer(default=0, doc="Seed of the bootstrap.")
    open_run = param.String(default="", doc="Run clicked in the most-disagreeing list (drives the trace viewer).")
    version = param.Integer(default=0, precedence=-1, doc="Bumped on reload.")

    def __init__(self, store: TraceStore, *, lazy: bool = False, **params) -> None:
        self.store = store
        self.scores = pd.DataFrame()
        self.runs = pd.DataFrame()
        self.loaded = False
        super().__init__(**params)
        if not lazy:
            self.reload()

    def reload(self) -> None:
        """Read scores and runs again and refresh the choices."""
        self.scores = self.store.scores_frame()
        self.runs = self.store.runs_frame()
        self.loaded = True
        judges, experts = sd.graders(self.scores, sd.MODEL), sd.graders(self.scores, sd.HUMAN)
        dims, scorers = sd.dimensions(self.scores), sd.numeric_scorers(self.scores)
        both = sd.scorers_with_humans(self.runs, scorers)
        for name, objs, first in (("judge", judges, None), ("dimension", dims, None),
                                  ("scorer", scorers, both[0] if both else None),
                                  ("expert", [ALL_EXPERTS, *experts], None)):
            self.param[name].objects = objs
            if getattr(self, name) not in objs:
                setattr(self, name, first or (objs[0] if objs else None))
        self.version += 1

    # -- data ----------------------------------------------------------------------------------

    def expert_grades(self, expert: str | None = None) -> pd.Series:
        """The chosen expert's grades per run (all experts: their majority grade) on the chosen dimension."""
        expert = expert or self.expert
        source = None if expert == ALL_EXPERTS else expert
        return sd.grades(self.scores, provenance=sd.HUMAN, dimension=self.dimension, source=source)

    def judge_agreement(self) -> Agreement:
        """``lab.stats.agreement`` of the judge's grades (``a``) with the expert(s)' (``b``), on the runs both graded.

        Raises:
            StatsError: Fewer than two runs graded by both.
        """
        judge = sd.grades(self.scores, provenance=sd.MODEL, dimension=self.dimension, source=self.judge)
        return agreement(judge, self.expert_grades(), join="inner", n_boot=self.n_boot, seed=self.seed, top=50,
                         names=("judge", "expert"))

    def budget_curves(self) -> pd.DataFrame:
        """``lab.stats.budget_curve`` per contestant over budgets spanning the runs' time limits. Human experts
        are pooled; a contestant run at several time limits gets one curve per limit (``… @ 2h``)."""
        col = f"score.{self.scorer}"
        if col not in self.runs.columns or self.runs[col].isna().all():
            raise LabError(f"no run has a final `{self.scorer}` score")
        runs = self.runs[self.runs[col].notna()]
        limits = pd.to_numeric(runs["config"].map(lambda c: (c or {}).get("time_limit")), errors="coerce")
        runs = runs.assign(time_limit=limits.fillna(runs["elapsed"].max()).fillna(1.0))
        names = ["human" if h else sd.contestant(a, m, h)
                 for a, m, h in zip(runs["agent"], runs["model"], runs["is_human"], strict=True)]
        runs = runs.assign(contestant=names)
        mixed = runs.groupby("contestant")["time_limit"].transform("nunique") > 1
        runs["contestant"] = [f"{c} @ {_duration(t)}" if m else c
                              for c, t, m in zip(runs["contestant"], runs["time_limit"], mixed, strict=True)]
        lo, hi = float(runs["time_limit"].min()), float(runs["time_limit"].max())
        budgets = np.unique(np.geomspace(lo / 8, hi * 4, 24).round(1))
        with warnings.catch_warnings():  # budgets needing more runs than a task has come back NaN; not drawn
            warnings.simplefilter("ignore")
            return budget_curve(runs, budgets.tolist(), scores=self.scores, score=col, by="contestant",
                                pool_humans=False, n_boot=self.n_boot, seed=self.seed)

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
        try:
            curve = self.budget_curves()
        except LabError as e:
            return notice(f"Cannot draw budget curves for `{self.scorer}`: {e}", "warning")
        parts: list = []
        if not sd.scorers_with_humans(self.runs, [self.scorer]):
            both = sd.scorers_with_humans(self.runs, self.param.scorer.objects)
            parts.append(notice(
                f"No human expert run has a `{self.scorer}` score, so this chart shows agents only. "
                + (f"Human and AI runs are both scored by: {', '.join(f'`{b}`' for b in both)}." if both else
                   "No scorer in this store scores both human and AI runs."), "info"))
        curve = curve.dropna(subset=["score"])
        if curve.empty:
            return notice(f"`{self.scorer}` has too few runs per task for a budget curve.", "info")
        base = alt.Chart(curve).encode(
            x=alt.X("budget:Q", scale=alt.Scale(type="log"), title="time budget (s, pause-free)"),
            color=alt.Color("group:N", title="agent / humans",
                            legend=alt.Legend(orient="bottom", columns=2, labelLimit=0)))
        band = base.mark_area(opacity=0.2).encode(y=alt.Y("low:Q", title=f"best-of-k {self.scorer}"), y2="high:Q")
        line = base.mark_line(point=True).encode(y="score:Q", tooltip=["group", "budget", "k", "score", "low", "high",
                                                                      "n_tasks", "n_runs"])
        parts.append(vega((band + line).properties(width=620, height=300, title="best-of-k vs time budget"),
                                  css_classes=["lab-budget-chart"]))
        return pn.Column(*parts, sizing_mode="stretch_width")

    @param.depends("judge", "expert", "dimension", "n_boot", "version")
    def agreement_view(self) -> pn.viewable.Viewable:
        """Judge-vs-expert agreement with CIs, the confusion matrix, and the most-disagreeing items."""
        if self.judge is None or len(self.param.expert.objects) < 2:
            return notice("Agreement needs grades from an LLM judge and from at least one human expert "
                          "(grade some runs in the grading tab).", "info")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                res = self.judge_agreement()
        except LabError as e:
            return notice(f"Agreement of `{self.judge}` with {self.expert} on `{self.dimension}` cannot be computed: "
                          f"{e}", "info")
        parts: list = [pn.pane.Markdown(
            f"**{res.n} runs** graded by judge `{self.judge}` and {self.expert} on `{self.dimension}` · "
            f"{res.kind} grades · {res.level:.0%} bootstrap CIs ({self.n_boot} resamples)")]
        parts += [notice(str(w.message), "info") for w in caught[:3]]
        measures = res.measures.round(3).rename_axis("statistic").reset_index()
        parts.append(pn.widgets.Tabulator(measures, disabled=True, show_index=False, sizing_mode="stretch_width",
                                          css_classes=["lab-agreement-table"]))
        if res.confusion is None:
            chart: pn.viewable.Viewable = notice("Grades are continuous: no confusion matrix.", "info")
        else:
            conf = res.confusion.stack().rename("count").reset_index()
            conf.columns = ["judge", "expert", "count"]
            heat = alt.Chart(conf).encode(x=alt.X("expert:O", title=f"expert ({self.expert})"),
                                          y=alt.Y("judge:O", title=f"judge ({self.judge})", sort="descending"))
            chart = vega((heat.mark_rect().encode(color=alt.Color("count:Q", scale=alt.Scale(scheme="blues")))
                                  + heat.mark_text().encode(text="count:Q")).properties(
                width=260, height=220, title="confusion matrix"), css_classes=["lab-confusion"])
        runs = sd.with_contestants(self.scores.drop_duplicates("run_id")).set_index("run_id")[["task", "contestant"]]
        worst = res.disagreements.rename(columns={"item": "run_id"}).join(runs, on="run_id")
        table = pn.widgets.Tabulator(worst, disabled=True, show_index=False, height=260, selectable=False,
                                     sizing_mode="stretch_width", css_classes=["lab-disagreements"])
        table.on_click(lambda e: setattr(self, "open_run", table.value["run_id"].iloc[e.row]))
        parts.append(pn.Row(chart, pn.Column(pn.pane.Markdown("**Most disagreeing** (click a row to open its trace)"),
                                             table, sizing_mode="stretch_width")))
        return pn.Column(*parts, sizing_mode="stretch_width")

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
                                                zip(self.runs["agent"], self.runs["model"], self.runs["is_human"],
                                                    strict=True)])
            own = runs[runs["contestant"] == f"human:{expert}"]
            agents = runs[~runs["is_human"] & runs["task"].isin(own["task"])]
            if own.empty:
                parts.append(notice(f"`{expert}` has no runs of their own (only grades).", "info"))
            else:
                table = own.groupby("task")[col].max().rename(f"{expert}").to_frame().join(
                    agents.groupby("task")[col].agg(["mean", "max"]).add_prefix("agents "), how="left")
                parts.append(pn.widgets.Tabulator(table.round(3).reset_index(), disabled=True, show_index=False,
                                                  sizing_mode="stretch_width", css_classes=["lab-expert-vs-agents"]))
        rows = []
        for other in experts:
            if other == expert:
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = agreement(self.expert_grades(expert), self.expert_grades(other), join="inner",
                                    n_boot=self.n_boot, seed=self.seed)
            except LabError:
                continue
            rows.append({"other expert": other, "n": res.n, **{k: round(v, 3) for k, v in res.to_dict().items()}})
        if rows:
            parts += [pn.pane.Markdown(f"**`{expert}` vs the other experts** on `{self.dimension}` (estimates)"),
                      pn.widgets.Tabulator(pd.DataFrame(rows), disabled=True, show_index=False,
                                           sizing_mode="stretch_width", css_classes=["lab-expert-agreement"])]
        elif len(experts) > 1:
            parts.append(notice(f"`{expert}` shares fewer than two graded runs with any other expert.", "info"))
        return pn.Column(*parts, sizing_mode="stretch_width")

    @param.depends("version")
    def leaderboard_view(self) -> pn.viewable.Viewable:
        """Elo and Bradley–Terry ratings of contestants from pairwise preferences, per dimension."""
        comps = sd.comparisons(self.store, self.runs) if not self.runs.empty else pd.DataFrame()
        if comps.empty:
            return notice("No pairwise preferences between different agents or experts yet "
                          "(grade pairs in the grading tab).", "info")
        tabs = pn.Tabs(sizing_mode="stretch_width")
        for dim, c in comps.groupby("dimension"):
            try:
                board = elo(c, n_boot=self.rating_boot, seed=self.seed).merge(
                    bradley_terry(c, n_boot=self.rating_boot, seed=self.seed), on=["dimension", "model", "games"],
                    suffixes=(" elo", " bt"))
            except LabError as e:
                tabs.append((dim, notice(f"No ratings for `{dim}`: {e}", "info")))
                continue
            board = board.drop(columns="dimension").rename(columns={"model": "contestant"})
            tabs.append((dim, pn.widgets.Tabulator(board.sort_values("rating bt", ascending=False).round(1),
                                                   disabled=True, show_index=False, sizing_mode="stretch_width",
                                                   css_classes=["lab-leaderboard"])))
        return tabs

    def panel(self) -> pn.viewable.Viewable:
        """The scorer, judge, expert and dimension controls over the budget, agreement, per-expert and
        leaderboard views (reads the store the first time it is shown)."""
        if not self.loaded:
            self.reload()
        controls = pn.Row(*(pn.widgets.Select.from_param(self.param[n], width=180, css_classes=[f"lab-hva-{n}"])
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
