"""Runs and scores table: every run with its final score per scorer, filtered by task, loop, model,
human-or-AI and status; the selected runs drive the other views."""

from __future__ import annotations

import pandas as pd
import panel as pn
import param

from lab.traces import TraceStore
from widgets.notice import notice

#: Run columns shown (then one ``score.*`` column per scorer and dimension).
COLUMNS = ["run_id", "task", "agent", "model", "who", "status", "elapsed"]


def runs_overview(store: TraceStore) -> pd.DataFrame:
    """The table's data: one row per run, ``who`` is ``human`` or ``AI``, final scores as ``score.*``."""
    df = store.runs_frame()
    if df.empty:
        return pd.DataFrame(columns=COLUMNS)
    df = df.assign(who=df["is_human"].map({True: "human", False: "AI"}), elapsed=df["elapsed"].astype(float).round(1))
    scores = sorted(c for c in df.columns if c.startswith("score."))
    return df[COLUMNS + scores].reset_index(drop=True)


class RunsTable(param.Parameterized):
    """Filterable table of runs; ``selected`` holds the run ids the user picked.

    Args:
        store: The trace store to read.
        **params: Initial filters (``tasks``, ``loops``, ``models``, ``who``, ``statuses``).
    """

    tasks = param.ListSelector(default=[], objects=[], doc="Only these tasks (none: all).")
    loops = param.ListSelector(default=[], objects=[], doc="Only these agent loops (none: all).")
    models = param.ListSelector(default=[], objects=[], doc="Only these models (none: all).")
    who = param.Selector(default="all", objects=["all", "AI", "human"], doc="Agents, human experts, or both.")
    statuses = param.ListSelector(default=[], objects=[], doc="Only these statuses (none: all).")
    selected = param.List(default=[], item_type=str, doc="Run ids selected in the table.")

    _FILTERS = {"tasks": "task", "loops": "agent", "models": "model", "statuses": "status"}

    def __init__(self, store: TraceStore, **params) -> None:
        self.store = store
        self.frame = pd.DataFrame(columns=COLUMNS)
        self.table = pn.widgets.Tabulator(
            self.frame, pagination="remote", page_size=20, selectable="checkbox", show_index=False,
            disabled=True, sizing_mode="stretch_width", css_classes=["lab-runs-table"],
        )
        self.table.param.watch(self._on_selection, "selection")
        super().__init__(**params)
        self.reload()

    def reload(self) -> None:
        """Read the runs again (new runs, new scores) and refresh the filter choices."""
        self.frame = runs_overview(self.store)
        for name, col in self._FILTERS.items():
            values = sorted(self.frame[col].dropna().astype(str).unique()) if not self.frame.empty else []
            self.param[name].objects = values
            kept = [v for v in getattr(self, name) if v in values]
            if kept != getattr(self, name):
                setattr(self, name, kept)
        self._apply()

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
        self.table.value = self.filtered()
        self.table.selection = [i for i, r in enumerate(self.table.value["run_id"]) if r in set(self.selected)]

    def _on_selection(self, event: param.parameterized.Event) -> None:
        value = self.table.value
        self.selected = [value["run_id"].iloc[i] for i in event.new if i < len(value)]

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

    @param.depends("tasks", "loops", "models", "who", "statuses", "selected")
    def summary(self) -> pn.viewable.Viewable:
        if self.frame.empty:
            return notice(f"The store `{self.store.path}` has no runs yet. Launch some (run launcher, "
                          "`lab run`), or import traces.", "info")
        n = len(self.table.value)
        return pn.pane.Markdown(f"{n:,} of {len(self.frame):,} runs · {len(self.selected)} selected",
                                css_classes=["lab-runs-summary"])

    def panel(self) -> pn.viewable.Viewable:
        refresh = pn.widgets.Button(name="↻ reload", width=90)
        refresh.on_click(lambda _: self.reload())
        return pn.Column(pn.Row(self.filters(), refresh), self.summary, self.table, sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        return self.panel()
