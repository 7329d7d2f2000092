"""Trace viewer: one run as a tree of steps, paginated, searchable, following a live run; two runs side by
side with their steps aligned; fork from a step."""

from __future__ import annotations

import math
from collections.abc import Callable

import pandas as pd
import panel as pn
import param

from lab.traces import StoreError, TraceStore
from widgets.notice import notice
from widgets.render import diff_html, steps_html
from widgets.steps import Step, align, build_steps, search, totals

#: ``fork(store, run_id, step, model=..., prompt=...) -> new run id``
Forker = Callable[..., str]


def _run_or_none(store: TraceStore, run_id: str) -> dict | None:
    try:
        return store.get_run(run_id)
    except StoreError:
        return None


class _Pager(param.Parameterized):
    """Page state shared by the single-run and side-by-side views."""

    page = param.Integer(default=1, bounds=(1, None), doc="Page shown (1-based).")
    page_size = param.Integer(default=100, bounds=(10, 1000), doc="Steps per page.")

    def _slice(self, n: int) -> tuple[int, int, int]:
        pages = max(1, math.ceil(n / self.page_size))
        page = min(self.page, pages)
        start = (page - 1) * self.page_size
        return start, min(n, start + self.page_size), pages

    def _pager(self) -> pn.Row:
        prev = pn.widgets.Button(name="◀", width=40, css_classes=["lab-prev"])
        nxt = pn.widgets.Button(name="▶", width=40, css_classes=["lab-next"])
        prev.on_click(lambda _: setattr(self, "page", max(1, self.page - 1)))
        nxt.on_click(lambda _: setattr(self, "page", self.page + 1))
        return pn.Row(prev, pn.widgets.IntInput.from_param(self.param.page, name="", width=80), nxt,
                      pn.widgets.Select.from_param(self.param.page_size, name="", options=[50, 100, 200, 500],
                                                   width=80))


class TraceViewer(_Pager):
    """One run's trace: header with totals, span outline, a page of steps, search, live follow, fork.

    Args:
        store: The trace store to read.
        forker: Function that forks a run from a step (``None``: the lab's fork when installed).
        **params: ``run_id``, ``query``, ``page``, ``page_size``, ``live``.
    """

    run_id = param.String(default="", doc="Run shown (an unambiguous prefix is accepted).")
    query = param.String(default="", doc="Only steps containing this text.")
    live = param.Boolean(default=True, doc="Follow a run that is still being written.")
    fork_step = param.Integer(default=0, bounds=(0, None), doc="Step to fork from.")
    fork_model = param.String(default="", doc="Model for the fork ('' keeps the run's).")
    fork_prompt = param.String(default="", doc="Replacement prompt for the fork ('' keeps it).")
    forked_run = param.String(default="", doc="The run the last fork created.")
    version = param.Integer(default=0, precedence=-1, doc="Bumped whenever new events arrive.")

    def __init__(self, store: TraceStore, *, forker: Forker | None = None, **params) -> None:
        self.store = store
        self.forker = forker
        self.run: dict | None = None
        self.steps: list[Step] = []
        self.message = ""
        self.fork_message = ""
        super().__init__(**params)
        self._load()

    # -- data ----------------------------------------------------------------------------------

    @param.depends("run_id", watch=True)
    def _load(self) -> None:
        self.steps, self.run, self.message = [], None, ""
        if not self.run_id:
            self.message = "Select a run to see its trace."
        else:
            self.run = _run_or_none(self.store, self.run_id)
            if self.run is None:
                self.message = f"No run `{self.run_id}` in the store `{self.store.path}`."
            else:
                build_steps(self.store.events(self.run["run_id"]), start=self.steps)
        self.page = 1
        self.version += 1

    def refresh(self) -> int:
        """Read events written since the last look (a live run); returns how many arrived."""
        if self.run is None:
            return 0
        after = self.steps[-1].seq if self.steps else -1
        new = self.store.events(self.run["run_id"], after_seq=after)
        status = self.store.get_run(self.run["run_id"])["status"]
        if new or status != self.run["status"]:
            build_steps(new, start=self.steps)
            self.run["status"] = status
            self.version += 1
        return len(new)

    @property
    def visible(self) -> list[Step]:
        """Steps matching the search."""
        return search(self.steps, self.query)

    # -- views ---------------------------------------------------------------------------------

    @param.depends("version")
    def header(self) -> pn.viewable.Viewable:
        """Run summary, totals, and a plain statement of anything unusual (missing, empty, still running)."""
        if self.run is None:
            return notice(self.message, "info" if not self.run_id else "warning")
        r, t = self.run, totals(self.steps)
        who = "human expert" if r["is_human"] else "AI"
        md = (f"**Run `{r['run_id']}`** · task `{r['task']}` · loop `{r['agent']}` · model `{r['model']}` · "
              f"{who} · status **{r['status']}**  \n{t['steps']:,} steps · {t['elapsed']:.1f}s working time · "
              f"{t['tokens_in']:,} tokens in · {t['tokens_out']:,} tokens out")
        if r.get("parent_run_id"):
            md += f"  \nforked from `{r['parent_run_id']}` at step {r['fork_step']}"
        parts: list = [pn.pane.Markdown(md, css_classes=["lab-run-header"])]
        if not self.steps:
            parts.append(notice(f"Run `{r['run_id']}` has no events yet.", "info"))
        if r["status"] == "running":
            parts.append(notice("This run is still being written; "
                                + ("the view follows it live." if self.live else "turn on *live* to follow it."),
                                "info"))
        elif r.get("error"):
            parts.append(notice(f"Run ended **{r['status']}**: {r['error']}", "danger"))
        return pn.Column(*parts, sizing_mode="stretch_width")

    @param.depends("version", "query", "page", "page_size")
    def steps_view(self) -> pn.viewable.Viewable:
        """The current page of (searched) steps."""
        if self.run is None or not self.steps:
            return pn.pane.HTML("")
        shown = self.visible
        if not shown:
            return notice(f"No step contains “{self.query}”.", "info")
        start, end, pages = self._slice(len(shown))
        info = f"steps {start + 1:,}–{end:,} of {len(shown):,} (page {min(self.page, pages)} of {pages})"
        return pn.Column(pn.pane.Markdown(info, css_classes=["lab-page-info"]),
                         pn.pane.HTML(steps_html(shown[start:end], query=self.query.strip()),
                                      sizing_mode="stretch_width", css_classes=["lab-steps"]),
                         sizing_mode="stretch_width")

    @param.depends("version")
    def outline(self) -> pn.viewable.Viewable:
        """Spans (steps that have children) with their events, tokens and time, indented as a tree."""
        frame = span_outline(self.steps)
        if frame.empty:
            return pn.pane.HTML("")
        return pn.widgets.Tabulator(frame, disabled=True, show_index=False, height=200, pagination="local",
                                    page_size=50, sizing_mode="stretch_width")

    def _do_fork(self, _event=None) -> None:
        forker = self.forker or _lab_forker()
        if self.run is None:
            self.fork_message = "Select a run before forking."
        else:
            try:
                self.forked_run = forker(self.store, self.run["run_id"], self.fork_step,
                                         model=self.fork_model or None, prompt=self.fork_prompt or None)
                self.fork_message = f"Forked into run `{self.forked_run}`."
            except Exception as e:  # noqa: BLE001 - the fork's own error is the message to show
                self.fork_message = f"Fork failed: {e}"
        self.param.trigger("forked_run")

    @param.depends("forked_run")
    def fork_status(self) -> pn.viewable.Viewable:
        """What the last fork did (or why it could not)."""
        if not self.fork_message:
            return pn.pane.HTML("")
        return notice(self.fork_message, "success" if self.fork_message.startswith("Forked") else "warning")

    def fork_controls(self) -> pn.viewable.Viewable:
        button = pn.widgets.Button(name="Fork from step", button_type="primary", css_classes=["lab-fork"])
        button.on_click(self._do_fork)
        return pn.Row(
            pn.widgets.IntInput.from_param(self.param.fork_step, name="step", width=90),
            pn.widgets.TextInput.from_param(self.param.fork_model, name="model", width=160),
            pn.widgets.TextInput.from_param(self.param.fork_prompt, name="prompt", width=260),
            button,
        )

    def panel(self) -> pn.viewable.Viewable:
        """The whole viewer; follows a live run with a periodic callback while shown."""
        live = pn.state.add_periodic_callback(self._tick, period=1000, start=True)
        col = pn.Column(
            self.header,
            pn.Row(pn.widgets.TextInput.from_param(self.param.query, name="search", placeholder="search steps",
                                                   css_classes=["lab-search"]),
                   pn.widgets.Checkbox.from_param(self.param.live), self._pager()),
            pn.Card(self.outline, title="span tree", collapsed=True, sizing_mode="stretch_width"),
            self.steps_view,
            pn.Card(self.fork_controls(), self.fork_status, title="fork from a step", collapsed=False,
                    sizing_mode="stretch_width"),
            sizing_mode="stretch_width", css_classes=["lab-trace-viewer"],
        )
        col._lab_callback = live  # kept alive with the view
        return col

    def _tick(self) -> None:
        if self.live and self.run is not None and self.run["status"] == "running":
            self.refresh()

    def __panel__(self) -> pn.viewable.Viewable:
        return self.panel()


def span_outline(steps: list[Step]) -> pd.DataFrame:
    """One row per span with children: indented name, agent, events below it, tokens and time spent."""
    by_span = {s.span_id: s for s in steps if s.span_id}
    agg: dict[str, list[float]] = {}
    for s in steps:
        p = s.parent_id
        while p is not None and p in by_span:
            a = agg.setdefault(p, [0, 0, 0.0])
            a[0] += 1
            a[1] += s.tokens_in + s.tokens_out
            a[2] = max(a[2], s.elapsed)
            p = by_span[p].parent_id
    rows = []
    for s in steps:
        if s.span_id in agg:
            n, tok, end = agg[s.span_id]
            rows.append({"step": s.seq, "span": "  " * s.depth + (s.title or s.kind), "agent": s.agent,
                         "events": int(n), "tokens": int(tok), "seconds": round(end - s.elapsed, 3)})
    return pd.DataFrame(rows)


class TraceDiff(_Pager):
    """Two runs side by side, their steps aligned (same kind, agent and title); differing text outlined.

    Args:
        store: The trace store to read.
        **params: ``run_a``, ``run_b``, ``page``, ``page_size``.
    """

    run_a = param.String(default="", doc="Left run.")
    run_b = param.String(default="", doc="Right run.")

    def __init__(self, store: TraceStore, **params) -> None:
        self.store = store
        super().__init__(**params)

    def rows(self) -> list[tuple[Step | None, Step | None]]:
        """Aligned step pairs of the two runs."""
        a = build_steps(self.store.events(self.store.get_run(self.run_a)["run_id"]))
        b = build_steps(self.store.events(self.store.get_run(self.run_b)["run_id"]))
        return align(a, b)

    @param.depends("run_a", "run_b", "page", "page_size")
    def view(self) -> pn.viewable.Viewable:
        if not (self.run_a and self.run_b):
            return notice("Pick two runs to compare (select two rows in the runs table).", "info")
        missing = [r for r in (self.run_a, self.run_b) if _run_or_none(self.store, r) is None]
        if missing:
            return notice(f"No run `{missing[0]}` in the store.", "warning")
        rows = self.rows()
        if not rows:
            return notice("Neither run has any events yet.", "info")
        same = sum(1 for a, b in rows if a is not None and b is not None and a.text == b.text)
        start, end, pages = self._slice(len(rows))
        head = (f"`{self.run_a}` vs `{self.run_b}` · {len(rows):,} aligned rows, {same:,} identical · "
                f"rows {start + 1:,}–{end:,} (page {min(self.page, pages)} of {pages})")
        return pn.Column(pn.pane.Markdown(head), pn.pane.HTML(diff_html(rows[start:end]), sizing_mode="stretch_width",
                                                              css_classes=["lab-diff-view"]),
                         sizing_mode="stretch_width")

    def panel(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(pn.widgets.TextInput.from_param(self.param.run_a, name="left run"),
                   pn.widgets.TextInput.from_param(self.param.run_b, name="right run"), self._pager()),
            self.view, sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self.panel()


def _lab_forker() -> Forker:
    """The lab's fork from a step (imported when first used: it loads the agent loops)."""
    from widgets.fork import fork_run

    return fork_run
