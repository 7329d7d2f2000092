"""Runs and scores table: every run with its final score per scorer, filtered by task, loop, model,
human-or-AI and status; the selected runs drive the other views."""

from __future__ import annotations

import pandas as pd
import panel as pn
import param

from lab.traces import TraceStore
from widgets.callbacks import keep_with, on_click
from widgets.notice import notice

#: Run columns shown (then one ``score.*`` column per scorer and dimension).
COLUMNS = ["run_id", "task", "agent", "model", "who", "status", "elapsed"]


def runs_overview(store: TraceStore) -> pd.DataFrame:
    """The table's data: one row per run, ``who`` is ``human`` or ``AI``, final scores as ``score.*`` (the mean
    of every grader's last grade where several graded a run), rounded to 3 decimals."""
    df = store.runs_frame(with_scores=False)
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    df = df.assign(who=df["is_human"].map({True: "human", False: "AI"}),
                   elapsed=pd.to_numeric(df["elapsed"], errors="coerce").round(1))
    scores = store.scores_frame(final_only=True)
    if not scores.empty:
        scores = scores[scores["value"].notna()]
        col = ["score." + s if d == "overall" else f"score.{s}.{d}"
               for s, d in zip(scores["scorer"], scores["dimension"], strict=True)]
        last = (scores.assign(column=col).groupby(["run_id", "column", "source"], sort=False, dropna=False)["value"]
                .last())
        wide = last.groupby(level=["run_id", "column"]).mean().unstack("column").round(3)
        df = df.merge(wide, how="left", left_on="run_id", right_index=True)
    cols = sorted(c for c in df.columns if c.startswith("score."))
    return df[COLUMNS + cols].reset_index(drop=True)


def _titles(frame: pd.DataFrame) -> dict[str, str]:
    """Short column titles: ``score.expert.clarity`` → ``expert · clarity``."""
    return {c: c[len("score."):].replace(".", " · ") for c in frame.columns if c.startswith("score.")}


def with_data(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` without the score columns no row of it has a value in."""
    empty = [c for c in frame.columns if c.startswith("score.") and frame[c].isna().all()]
    return frame.drop(columns=empty)


def agent_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per agent loop and model (human experts together): runs, runs done, mean working time and the mean
    of each score column that has data, rounded."""
    if frame.empty:
        return pd.DataFrame(columns=["contestant", "runs", "done", "mean s"])
    human = frame["who"].to_numpy() == "human"
    contestant = (frame["agent"].astype(str) + "/" + frame["model"].astype(str)).where(~human, "human experts")
    scores = [c for c in frame.columns if c.startswith("score.") and frame[c].notna().any()]
    data = frame[["elapsed", *scores]].assign(runs=1, done=(frame["status"] == "done").astype(int),
                                              contestant=contestant.to_numpy())
    g = data.groupby("contestant", sort=True)
    out = g[["runs", "done"]].sum().join(g[["elapsed", *scores]].mean().round(3).rename(columns={"elapsed": "mean s"}))
    out["mean s"] = out["mean s"].round(1)
    return out.reset_index().sort_values("runs", ascending=False, kind="stable").reset_index(drop=True)


class RunsTable(pn.viewable.Viewer):
    """Filterable table of runs; ``selected`` holds the run ids the user picked.

    Args:
        store: The trace store to read.
        **params: Initial filters (``tasks``, ``loops``, ``models``, ``who``, ``statuses``).
    """

    tasks = param.ListSelector(default=[], objects=[], doc="Only these tasks (none: all).")
    loops = param.ListSelector(default=[], objects=[], doc="Only these agent loops (none: all).")
    models = param.ListSelector(default=[], objects=[], doc="Only these models (none: all).")
    who: param.Selector[str] = param.Selector(default="all", objects=["all", "AI", "human"],
                                              doc="Agents, human experts, or both.")
    statuses = param.ListSelector(default=[], objects=[], doc="Only these statuses (none: all).")
    selected = param.List(default=[], item_type=str, doc="Run ids selected in the table.")
    open_run = param.String(default="", doc="Run whose row was clicked (the dashboard opens its trace).")
    version = param.Integer(default=0, precedence=-1, doc="Bumped whenever the runs are read again.")

    _FILTERS = {"tasks": "task", "loops": "agent", "models": "model", "statuses": "status"}

    def __init__(self, store: TraceStore, **params) -> None:
        self.store = store
        self.frame = pd.DataFrame(columns=COLUMNS)
        self._signature: tuple = ()
        self._applying = False
        self.table = pn.widgets.Tabulator(
            self.frame, pagination="remote", page_size=20, selectable="checkbox", show_index=False,
            disabled=True, sizing_mode="stretch_width", css_classes=["lab-runs-table"], frozen_columns=["run_id"],
        )
        self.table.param.watch(self._on_selection, "selection")
        self.table.on_click(self._on_click)
        self.agents = pn.widgets.Tabulator(  # per-agent summary of the rows shown, updated with them
            agent_summary(self.frame), disabled=True, show_index=False, selectable=False,
            frozen_columns=["contestant"], sizing_mode="stretch_width", max_height=220,
            css_classes=["lab-agent-summary"])
        super().__init__(**params)
        self.reload()

    def reload(self) -> None:
        """Read the runs again (new runs, new scores) and refresh the filter choices."""
        self._signature = self.signature()
        self.frame = with_data(runs_overview(self.store))  # score columns some run has a value in
        for name, col in self._FILTERS.items():
            values = sorted(self.frame[col].dropna().astype(str).unique()) if not self.frame.empty else []
            self.param[name].objects = values
            kept = [v for v in getattr(self, name) if v in values]
            if kept != getattr(self, name):
                setattr(self, name, kept)
        self._apply()
        self.version += 1

    def signature(self) -> tuple:
        """What changes when runs are added, change status or get scores (one cheap query)."""
        return self.store.totals()

    def poll(self) -> bool:
        """Reload when the store changed since the last read (a launch, a fork, new grades); returns whether
        it did."""
        if self.signature() == self._signature:
            return False
        self.reload()
        return True

    def filtered(self) -> pd.DataFrame:
        """Rows passing the current filters."""
        df = self.frame
        mask = pd.Series(True, index=df.index)
        for name, col in self._FILTERS.items():
            chosen = getattr(self, name)
            if chosen:
                mask &= df[col].astype(str).isin(chosen)
        if self.who != "all":
            mask &= df["who"] == self.who
        return df[mask].reset_index(drop=True)

    @param.depends("tasks", "loops", "models", "who", "statuses", watch=True)
    def _apply(self) -> None:
        value = self.filtered()
        self._applying = True  # a new value clears the table's selection for a moment: not the user's doing
        try:
            if list(value.columns) != list(self.table.value.columns):  # columns change only on a reload
                self.table.param.update(value=value, titles=_titles(value))
            else:
                self.table.value = value
            summary = agent_summary(value)
            self.agents.param.update(value=summary, titles=_titles(summary))
            self.table.selection = [i for i, r in enumerate(value["run_id"]) if r in set(self.selected)]
        finally:
            self._applying = False

    def _on_selection(self, event: param.parameterized.Event) -> None:
        if self._applying:
            return
        value = self.table.value
        self.selected = [value["run_id"].iloc[i] for i in event.new if i < len(value)]

    def _on_click(self, event) -> None:
        value = self.table.value
        if event.row is not None and event.row < len(value) and event.column != "_selection":
            self.open_run = ""
            self.open_run = str(value["run_id"].iloc[event.row])

    def select(self, run_ids: list[str]) -> None:
        """Select these runs (those visible under the current filters)."""
        self.selected = list(run_ids)
        self.table.selection = [i for i, r in enumerate(self.table.value["run_id"]) if r in set(run_ids)]

    def filters(self) -> pn.viewable.Viewable:
        """The filter widgets."""
        return pn.Row(
            *(pn.widgets.MultiChoice.from_param(self.param[n], name=n, width=200,
                                                css_classes=[f"lab-filter-{n}"]) for n in self._FILTERS),
            pn.widgets.RadioButtonGroup.from_param(self.param.who, name="who", css_classes=["lab-filter-who"]),
            sizing_mode="stretch_width",
        )

    @param.depends("tasks", "loops", "models", "who", "statuses", "selected", "version")
    def summary(self) -> pn.viewable.Viewable:
        """How many runs pass the filters and how many are selected (or how to get runs, with none)."""
        if self.frame.empty:
            return notice(f"The store `{self.store.path}` has no runs yet. Launch some (run launcher, "
                          "`lab run`), or import traces.", "info")
        n = len(self.table.value)
        return pn.pane.Markdown(f"{n:,} of {len(self.frame):,} runs · {len(self.selected)} selected · "
                                "click a row to open its trace", css_classes=["lab-runs-summary"])

    def panel(self) -> pn.viewable.Viewable:
        """Filters, reload button, per-agent summary and the table; reloads itself when the store changes."""
        refresh = pn.widgets.Button(name="↻ reload", width=90)
        on_click(refresh, self.reload)
        view = pn.Column(pn.Row(self.filters(), refresh), pn.pane.Markdown("**Per agent**"), self.agents,
                         self.summary, self.table, sizing_mode="stretch_width")

        def refresh_when_changed() -> None:  # launches, forks, grades
            self.poll()

        keep_with(view, pn.state.add_periodic_callback(refresh_when_changed, period=2000))
        return view

    def __panel__(self) -> pn.viewable.Viewable:
        return self.panel()
