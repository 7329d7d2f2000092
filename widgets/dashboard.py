"""The dashboard: every view over one store, linked (the runs selected drive the trace, the side-by-side
diff and the grading queue; a disagreeing item opens its trace; new grades refresh the comparisons)."""

from __future__ import annotations

import html
import os
from typing import Any

import panel as pn
import param

from lab.auth import Access, record_action
from lab.traces import TraceStore
from lab.traces.backend import open_trace_store
from widgets import study_data as sd
from widgets.grading import GradingWidget
from widgets.human_vs_ai import HumanVsAIDashboard
from widgets.launcher import RunLauncher
from widgets.runs_table import RunsTable
from widgets.trace_view import Forker, TraceDiff, TraceViewer

TABS = ["Runs", "Trace", "Side by side", "Grade", "Human vs AI", "Launch"]
#: The action a tab needs: a signed-in user sees only the tabs their role allows.
TAB_ACTION = {"Runs": "read", "Trace": "read", "Side by side": "read", "Grade": "grade", "Human vs AI": "read",
              "Launch": "launch"}


class Dashboard(pn.viewable.Viewer):
    """All views over one trace store, linked.

    Args:
        store: The store (default: ``$LAB_STORE`` or the project's ``.lab/traces.db``).
        forker: Fork-from-a-step function for the trace viewer (default: the lab's).
        grader: Grader id pre-filled in the grading tab (signed in: the user, never typed).
        access: Who uses the dashboard (default: one person, locally, everything allowed). Signed in, each
            tab and each action (grade, launch, cancel, fork, approve) is checked against the user's role in the
            server-side callbacks, and forks and launches record who made them.
    """

    tab: param.Selector[str] = param.Selector(default="Runs", objects=TABS, doc="Tab shown.")

    def __init__(self, store: TraceStore | None = None, *, forker: Forker | None = None, grader: str = "",
                 access: Access | None = None, **params: Any) -> None:
        self.access = access or Access()
        self.tabs = [t for t in TABS if self.access.can(TAB_ACTION[t])]
        tab = params.pop("tab", "Runs")
        super().__init__(**params)
        if self.tabs:
            self.param.tab.objects = self.tabs
            self.tab = tab if tab in self.tabs else self.tabs[0]
        self.store = store if store is not None else open_trace_store()
        self.runs = RunsTable(self.store)
        self.trace = TraceViewer(self.store, forker=self._guarded_forker(forker), access=self.access)
        self.diff = TraceDiff(self.store)
        self.grading = GradingWidget(self.store, grader=grader, access=self.access)
        self.grading.dimensions = sd.rubric(self.store) or self.grading.dimensions
        self.compare = HumanVsAIDashboard(self.store, lazy=True)
        self.launcher = RunLauncher(self.store, access=self.access)
        self.runs.param.watch(self._on_selected, "selected")
        self.runs.param.watch(self._on_open_run, "open_run")
        self.runs.param.watch(self._on_filtered, "version")  # new runs (a launch, a fork) join the grading queue
        self.runs.param.watch(self._on_filtered, ["tasks", "loops", "models", "who", "statuses"])
        self.compare.param.watch(self._on_open_run, "open_run")
        self.trace.param.watch(self._on_forked, "forked_run")

        def graded(_: param.parameterized.Event) -> None:  # a new grade changes the comparison once it is shown
            if self.compare.loaded:
                self.compare.reload()

        self.grading.param.watch(graded, "done")
        self._on_filtered()

    def _guarded_forker(self, forker: Forker | None) -> Forker:
        """The fork callback, refused unless the user may fork; the fork records who made it."""

        def fork(store: TraceStore, run_id: str, step: int, **kwargs: Any) -> str:
            user = self.access.require("fork")
            if forker is not None:
                child = forker(store, run_id, step, **kwargs)
            else:
                from widgets.fork import fork_run

                child = fork_run(store, run_id, step, **kwargs)
            if user:
                record_action(store, child, "fork", user, parent=run_id, step=step)
            return child

        return fork

    def _on_selected(self, event: param.parameterized.Event) -> None:
        sel = event.new
        if sel:
            self.trace.run_id = sel[-1]
        if len(sel) >= 2:
            self.diff.param.update(run_a=sel[-2], run_b=sel[-1])
        self.grading.runs = list(sel) if sel else list(self.runs.table.value["run_id"])

    def _on_filtered(self, *_: Any) -> None:
        if not self.runs.selected:
            self.grading.runs = list(self.runs.table.value["run_id"])

    def _on_open_run(self, event: param.parameterized.Event) -> None:
        if event.new and "Trace" in self.tabs:
            self.trace.run_id = event.new
            self.tab = "Trace"

    def _on_forked(self, event: param.parameterized.Event) -> None:
        if event.new:
            self.runs.reload()

    def panel(self) -> pn.viewable.Viewable:
        """The tabs (usable inline in a notebook and under ``panel serve``); a tab's view is built the
        first time it is shown."""
        views: dict[str, RunsTable | TraceViewer | TraceDiff | GradingWidget | HumanVsAIDashboard | RunLauncher]
        views = {"Runs": self.runs, "Trace": self.trace, "Side by side": self.diff, "Grade": self.grading,
                 "Human vs AI": self.compare, "Launch": self.launcher}
        tab_names = self.tabs
        slots = {name: pn.Column(sizing_mode="stretch_width") for name in tab_names}

        def show(name: str) -> None:
            if not slots[name].objects:
                slots[name].objects = [views[name].panel()]

        tabs = pn.Tabs(*slots.items(), sizing_mode="stretch_width", css_classes=["lab-dashboard"])
        show(self.tab)
        tabs.active = tab_names.index(self.tab)
        tabs.param.watch(lambda e: setattr(self, "tab", tab_names[e.new]), "active")

        def on_tab(event: param.parameterized.Event) -> None:
            if event.new not in slots:
                return
            show(event.new)
            tabs.active = tab_names.index(event.new)

        self.param.watch(on_tab, "tab")
        if not tab_names:
            return pn.Column(pn.pane.Markdown("## Expert Lab\n\nYour account has no role here; ask an operator.",
                                              css_classes=["lab-no-role"]), sizing_mode="stretch_width")
        title = "## Expert Lab" if self.access.role == "grader" else f"## Expert Lab · `{self.store.path}`"
        header = pn.pane.Markdown(title, css_classes=["lab-title"])
        parts: list[Any] = [header]
        if self.access.signed_in:
            parts.append(pn.pane.HTML(f'signed in as <b class="lab-user">{html.escape(self.access.user or "")}</b> '
                                      f'(<span class="lab-role">{self.access.role}</span>) · '
                                      '<a href="./logout">sign out</a>',
                                      css_classes=["lab-signed-in"]))
        return pn.Column(*parts, tabs, sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        return self.panel()


def dashboard(store: TraceStore | str | os.PathLike[str] | None = None, **kwargs: Any) -> pn.viewable.Viewable:
    """The dashboard as a Panel object: ``dashboard().servable()`` in a notebook or script.

    Args:
        store: A store, or the path of one (default: ``$LAB_STORE`` or the project's store).
        **kwargs: Passed to :class:`Dashboard`.
    """
    if store is not None and not isinstance(store, TraceStore):
        store = open_trace_store(store)
    return Dashboard(store, **kwargs).panel()
