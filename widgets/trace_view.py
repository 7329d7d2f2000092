"""Trace viewer: one run as a tree of steps, paginated, searchable, following a live run, with its provenance;
two runs side by side with their steps aligned and their provenance compared; fork from a step; answer a
pending tool-call approval and follow the run as it continues."""

from __future__ import annotations

import html
import json
import math
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Literal

import pandas as pd
import panel as pn
import param

from lab import provenance
from lab.auth import Access, AuthError, record_action
from lab.traces import RunRow, StoreError, TraceStore
from widgets.callbacks import keep_with, on_click
from widgets.notice import notice
from widgets.render import (
    CSS,
    block,
    diff_html,
    provenance_diff_html,
    provenance_html,
    scores_html,
    steps_html,
    tree_html,
)
from widgets.steps import Step, align, build_steps, search, totals

#: ``fork(store, run_id, step, model=..., prompt=...) -> new run id``
Forker = Callable[..., str]
#: How a reviewer answers a pending tool call.
Decision = Literal["approve", "edit", "reject"]


def _seconds(s: float) -> str:
    """Working time as people say it: ``0.26s``, ``40.0s``, ``1h 53m``."""
    if s < 10:
        return f"{s:.2f}s"
    if s < 600:
        return f"{s:.1f}s"
    h, m = divmod(round(s / 60), 60)
    return f"{h}h {m:02d}m" if h else f"{m}m"


def _run_or_none(store: TraceStore, run_id: str) -> RunRow | None:
    try:
        return store.get_run(run_id)
    except StoreError:
        return None


class _Pager(pn.viewable.Viewer):
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
        access: Who is looking: signed in, only an ``operator`` may answer an approval (recorded with the name).
        **params: ``run_id``, ``query``, ``page``, ``page_size``, ``live``.
    """

    run_id = param.String(default="", doc="Run shown (an unambiguous prefix is accepted).")
    query = param.String(default="", doc="Only steps containing this text.")
    live = param.Boolean(default=True, doc="Follow a run that is still being written.")
    fork_step = param.Integer(default=0, bounds=(0, None), doc="Step to fork from.")
    fork_model = param.String(default="", doc="Model for the fork ('' keeps the run's).")
    fork_prompt = param.String(default="", doc="Replacement prompt for the fork ('' keeps it).")
    forked_run = param.String(default="", doc="The run the last fork created.")
    approve_model = param.String(default="", doc="Model to continue an approved run with ('' keeps the run's).")
    edit_arguments = param.String(default="", doc="Edited arguments of the pending call (a JSON object).")
    reject_reason = param.String(default="", doc="Why the pending call is rejected (the agent is told).")
    approval_message = param.String(default="", doc="What the last approval did (or why it could not).")
    version = param.Integer(default=0, precedence=-1, doc="Bumped whenever new events arrive.")

    def __init__(self, store: TraceStore, *, forker: Forker | None = None, access: Access | None = None,
                 **params) -> None:
        self.store = store
        self.forker = forker
        self.access = access or Access()
        self.run: RunRow | None = None
        self.steps: list[Step] = []
        self._last_seq = -1
        self.message = ""
        self.fork_message = ""
        self.provenance: dict = {}
        self.pending: list[dict] = []
        self.approval_thread: threading.Thread | None = None
        self._approval_level = "info"
        self._approval_outcome: tuple[str, str] | None = None
        super().__init__(**params)
        self._load()

    # -- data ----------------------------------------------------------------------------------

    @param.depends("run_id", watch=True)
    def _load(self) -> None:
        self.steps, self.run, self.message, self._last_seq = [], None, "", -1
        if not self.run_id:
            self.message = "Select a run to see its trace."
        else:
            self.run = _run_or_none(self.store, self.run_id)
            if self.run is None:
                self.message = f"No run `{self.run_id}` in the store `{self.store.path}`."
            else:
                events = self.store.events(self.run["run_id"])
                build_steps(events, start=self.steps)
                self._last_seq = events[-1].seq if events else -1
        self._reread()
        self._say("")
        self.page = 1
        self.version += 1

    def _reread(self) -> None:
        """The run's provenance and pending approval (after new events)."""
        from lab.agents.approvals import awaiting_approval

        if self.run is None:
            self.provenance, self.pending = {}, []
            return
        self.provenance = provenance.of_run(self.store, self.run["run_id"])
        pending = awaiting_approval(self.store, self.run["run_id"]).get(self.run["run_id"]) or []
        if pending and pending != self.pending:
            self.edit_arguments = json.dumps(pending[0].get("arguments") or {})
        self.pending = pending

    def refresh(self) -> int:
        """Read events written since the last look (a live run); returns how many arrived."""
        if self._approval_outcome is not None:
            outcome, self._approval_outcome = self._approval_outcome, None
            self._say(*outcome)
        if self.run is None:
            return 0
        after = self._last_seq
        new = self.store.events(self.run["run_id"], after_seq=after)
        fresh = self.store.get_run(self.run["run_id"])
        if new or fresh["status"] != self.run["status"]:
            build_steps(new, start=self.steps)
            self._last_seq = max([after, *(e.seq for e in new)])
            self.run = fresh
            self._reread()
            self.version += 1
        return len(new)

    @property
    def visible(self) -> list[Step]:
        """Steps matching the search."""
        return search(self.steps, self.query)

    # -- views ---------------------------------------------------------------------------------

    def run_scores(self) -> pd.DataFrame:
        """The shown run's final scores (rule, judge and expert), one row per score, oldest first."""
        cols = ["scorer", "dimension", "value", "label", "provenance", "source"]
        if self.run is None:
            return pd.DataFrame(columns=cols)
        return pd.DataFrame(self.store.scores(self.run["run_id"], final_only=True), columns=cols)

    def outcome(self) -> dict[str, str]:
        """What the run was asked (``asked``), how it ended (``stop``) and its final answer (``answer``)."""
        first = next((s for s in self.steps if s.kind == "run_started"), None)
        cfg = self.run["config"] if self.run is not None else {}
        asked = (first.text if first and first.text else "") or str(cfg.get("prompt") or "")
        finished = next((s for s in reversed(self.steps) if s.kind == "run_finished"), None)
        answer = finished.text if finished else ""
        if not answer:  # an imported SUPER run: its submit action; a loop without run_finished: the last answer
            sub = next((s for s in reversed(self.steps) if s.kind == "tool_call" and s.title.startswith("submit")),
                       None)
            said = next((s for s in reversed(self.steps) if s.note.startswith("answer: ")), None)
            answer = sub.text if sub else said.note[len("answer: "):] if said else ""
        return {"asked": asked, "stop": finished.title if finished else "", "answer": answer}

    @param.depends("version")
    def header(self) -> pn.viewable.Viewable:
        """What was asked, how it ended (status, stop reason, final answer), totals, and the scores with
        their provenance; a plain statement of anything unusual (missing, empty, still running)."""
        if self.run is None:
            return notice(self.message, "info" if not self.run_id else "warning")
        r, t, o = self.run, totals(self.steps), self.outcome()
        who = "human expert" if r["is_human"] else "AI"
        elapsed = max(t["elapsed"], float(r.get("elapsed") or 0.0))
        cost = f" · ${t['cost']:.4f}" if t["cost"] is not None else ""
        colour = {"done": "#0f9d58", "failed": "#db4437", "running": "#4285f4"}.get(r["status"], "#f4b400")
        lines = [f"<b>Run <code>{html.escape(r['run_id'])}</code></b> · task <code>{html.escape(str(r['task']))}"
                 f"</code> · loop <code>{html.escape(str(r['agent']))}</code> · model <code>"
                 f"{html.escape(str(r['model']))}</code> · {who}",
                 f'<span style="color:{colour};font-weight:600">{html.escape(r["status"])}</span>'
                 + (f" · stop: <b>{html.escape(o['stop'])}</b>" if o["stop"] else "")
                 + (f" · time limit {_seconds(float(r['config']['time_limit']))}"
                    if isinstance((r.get("config") or {}).get("time_limit"), (int, float)) else "")
                 + f" · {t['steps']:,} steps · {_seconds(elapsed)} working time · {t['tokens_in']:,} tokens in · "
                   f"{t['tokens_out']:,} tokens out{cost}"
                 + (f" · started {time.strftime('%Y-%m-%d %H:%M', time.localtime(r['created_at']))}"
                    if r.get("created_at") else "")]
        if r.get("parent_run_id"):
            lines.append(f"forked from <code>{html.escape(r['parent_run_id'] or '')}</code> at step {r['fork_step']}")
        source = ((r.get("config") or {}).get("source"))
        if source:
            did = sum(s.kind not in ("run_started", "run_finished", "score") for s in self.steps)
            lines.append(f"imported from <code>{html.escape(str(source))}</code>"
                         + (f" · {did:,} recorded steps" if did else
                            " · a run table: its scores and working time, no transcript"))
        asked = block(o["asked"], query="") if o["asked"] else "<div><i>no prompt recorded</i></div>"
        answer = block(o["answer"], query="") if o["answer"] else "<div><i>no final answer</i></div>"
        body = (CSS + '<div class="lab-trace lab-run-summary">' + "<br>".join(lines)
                + f'<div class="lab-io" style="margin-top:6px"><div><b>Asked</b>{asked}</div>'
                  f'<div><b>Final answer</b>{answer}</div></div>'
                + f"<b>Scores</b>{scores_html(self.run_scores())}</div>")
        parts: list = [pn.pane.HTML(body, sizing_mode="stretch_width", css_classes=["lab-run-header"]),
                       pn.Card(pn.pane.HTML(CSS + provenance_html(self.provenance), sizing_mode="stretch_width"),
                               title="Provenance", collapsed=True, sizing_mode="stretch_width",
                               css_classes=["lab-provenance-card"])]
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
        spans = {s.span_id: s for s in self.steps if s.kind == "span" and s.span_id}
        return pn.Column(pn.pane.Markdown(info, css_classes=["lab-page-info"]),
                         pn.pane.HTML(steps_html(shown[start:end], query=self.query.strip(), spans=spans),
                                      sizing_mode="stretch_width", css_classes=["lab-steps"]),
                         sizing_mode="stretch_width")

    @param.depends("version")
    def outline(self) -> pn.viewable.Viewable:
        """The span tree: spans nested as the loop opened them, each collapsible, with events, tokens, time."""
        if self.run is None or not self.steps:
            return pn.pane.HTML("")
        return pn.pane.HTML(tree_html(self.steps), sizing_mode="stretch_width", css_classes=["lab-span-tree"])

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
        """The step, model and prompt to fork with, and the button that forks."""
        button = pn.widgets.Button(name="Fork from step", button_type="primary", css_classes=["lab-fork"])
        button.on_click(self._do_fork)
        return pn.Row(
            pn.widgets.IntInput.from_param(self.param.fork_step, name="step", width=90),
            pn.widgets.TextInput.from_param(self.param.fork_model, name="model", width=160),
            pn.widgets.TextInput.from_param(self.param.fork_prompt, name="prompt", width=260),
            button,
        )

    def _say(self, message: str, level: str = "info") -> None:
        """Set what the approval controls say (``level``: a :func:`widgets.notice.notice` kind)."""
        self._approval_level = level
        self.approval_message = message

    def _approve(self, decision: Decision) -> threading.Thread | None:
        """Answer the shown run's pending tool call (``edit`` with :attr:`edit_arguments`, ``reject`` with
        :attr:`reject_reason`) through :func:`lab.agents.approvals.answer_pending` and continue the run in a
        background thread (returned); the view follows it live. Problems are said in :attr:`approval_message`."""
        from lab.agents.approvals import answer_pending, edited_arguments
        from lab.errors import LabError

        try:
            user = self.access.require("approve")  # enforced here, whatever the page shows
        except AuthError as e:
            self._say(str(e), "danger")
            return None
        if self.run is None or not self.pending:
            self._say("This run is not waiting for an approval.", "warning")
            return None
        if self.approval_thread is not None and self.approval_thread.is_alive():
            self._say("An answer is already being carried out; the run is continuing.", "warning")
            return None
        arguments = None
        if decision == "edit":
            try:
                arguments = edited_arguments(self.edit_arguments)
            except LabError as e:
                self._say(f"Edited arguments: {e}", "danger")
                return None
        reason = (self.reject_reason.strip() or None) if decision == "reject" else None
        try:
            from lab.models import load_model

            model = load_model(self.approve_model) if self.approve_model.strip() else None
        except Exception as e:  # noqa: BLE001 - the loader's own error is the message to show
            self._say(f"Cannot load model `{self.approve_model}`: {e}", "danger")
            return None
        run_id, call = self.run["run_id"], self.pending[0]
        verb = {"approve": "Approved", "edit": "Edited", "reject": "Rejected"}[decision]
        if user:
            record_action(self.store, run_id, "approve", user, decision=decision)

        def work() -> None:
            try:
                res = answer_pending(self.store, run_id, decision, arguments=arguments, reason=reason, model=model)
                outcome = (f"Run `{run_id}` {res.status} ({res.stop_reason}).",
                           "danger" if res.status == "failed" else "success")
            except Exception as e:  # noqa: BLE001 - shown in the view; the run's own record keeps the error
                outcome = (f"Approval failed: {e}", "danger")
            self._approval_outcome = outcome  # said by the next refresh (the view's thread)

        self.live = True
        self.pending = []
        self._say(f"{verb} `{call['tool']}`; the run continues and the view follows it live.")
        self.approval_thread = threading.Thread(target=work, name=f"approve-{run_id}", daemon=True)
        self.approval_thread.start()
        return self.approval_thread

    @param.depends("version", "approval_message")
    def approval_view(self) -> pn.viewable.Viewable:
        """The tool call the run waits on, with Approve, Edit (JSON arguments) and Reject (reason) controls."""
        status = notice(self.approval_message, self._approval_level) if self.approval_message else None
        if not self.pending:
            return status or pn.pane.HTML("")
        call = self.pending[0]
        approve = pn.widgets.Button(name="Approve", button_type="success", css_classes=["lab-approve"])
        edit = pn.widgets.Button(name="Run with edited arguments", button_type="warning", css_classes=["lab-edit"])
        reject = pn.widgets.Button(name="Reject", button_type="danger", css_classes=["lab-reject"])
        on_click(approve, partial(self._approve, "approve"))
        on_click(edit, partial(self._approve, "edit"))
        on_click(reject, partial(self._approve, "reject"))
        more = f" (and {len(self.pending) - 1} more)" if len(self.pending) > 1 else ""
        what = pn.pane.HTML(
            CSS + f'<div class="lab-trace"><b>Waiting for approval</b> at step {call.get("step", "?")}{more}:'
            + block(f"{call['tool']}({json.dumps(call.get('arguments') or {}, ensure_ascii=False)})", lang="python",
                    query="") + "</div>", sizing_mode="stretch_width", css_classes=["lab-pending-call"])
        return pn.Card(
            what,
            pn.Row(approve, pn.widgets.TextInput.from_param(self.param.approve_model, name="continue with",
                                                            placeholder="the run's model", width=220)),
            pn.Row(pn.widgets.TextAreaInput.from_param(self.param.edit_arguments, name="arguments (JSON)",
                                                       width=420, height=70, css_classes=["lab-edit-args"]), edit),
            pn.Row(pn.widgets.TextInput.from_param(self.param.reject_reason, name="reason", width=420,
                                                   css_classes=["lab-reject-reason"]), reject),
            *([status] if status else []),
            title="Tool call awaiting approval", collapsed=False, sizing_mode="stretch_width",
            css_classes=["lab-approval"])

    def panel(self) -> pn.viewable.Viewable:
        """The whole viewer; follows a live run with a periodic callback while shown."""
        live = pn.state.add_periodic_callback(self._tick, period=1000, start=True)
        col = pn.Column(
            self.header,
            self.approval_view,
            pn.Row(pn.widgets.TextInput.from_param(self.param.run_id, name="run", placeholder="run id",
                                                   css_classes=["lab-run-id"]),
                   pn.widgets.TextInput.from_param(self.param.query, name="search", placeholder="search steps",
                                                   css_classes=["lab-search"]),
                   pn.widgets.Checkbox.from_param(self.param.live), self._pager()),
            pn.Card(self.outline, title="span tree", collapsed=True, sizing_mode="stretch_width",
                    css_classes=["lab-span-card"]),
            self.steps_view,
            pn.Card(self.fork_controls(), self.fork_status, title="fork from a step", collapsed=False,
                    sizing_mode="stretch_width"),
            sizing_mode="stretch_width", css_classes=["lab-trace-viewer"],
        )
        keep_with(col, live)
        return col

    def _tick(self) -> None:
        # also after the run ends: its scores (and graders' grades) arrive after ``run_finished``
        if self.live and self.run is not None:
            self.refresh()

    def __panel__(self) -> pn.viewable.Viewable:
        return self.panel()


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
        """The provenance differences and one page of the two runs' aligned steps."""
        if not (self.run_a and self.run_b):
            return notice("Pick two runs to compare (select two rows in the runs table).", "info")
        missing = [r for r in (self.run_a, self.run_b) if _run_or_none(self.store, r) is None]
        if missing:
            return notice(f"No run `{missing[0]}` in the store.", "warning")
        rows = self.rows()
        if not rows:
            return notice("Neither run has any events yet.", "info")
        same = sum(1 for a, b in rows if a is not None and b is not None and a.text == b.text)
        prov = self.provenance_view()
        start, end, pages = self._slice(len(rows))
        head = (f"`{self.run_a}` vs `{self.run_b}` · {len(rows):,} aligned rows, {same:,} identical · "
                f"rows {start + 1:,}–{end:,} (page {min(self.page, pages)} of {pages})")
        return pn.Column(prov, pn.pane.Markdown(head),
                         pn.pane.HTML(diff_html(rows[start:end]), sizing_mode="stretch_width",
                                      css_classes=["lab-diff-view"]),
                         sizing_mode="stretch_width")

    def provenance_view(self) -> pn.viewable.Viewable:
        """Where the two runs' provenance differs (:func:`lab.provenance.diff`, as ``lab runs diff`` lists it),
        as a table; a note for a run that recorded none."""
        ids = [self.store.get_run(r)["run_id"] for r in (self.run_a, self.run_b)]
        recorded = [provenance.of_run(self.store, r) for r in ids]
        missing = [r for r, p in zip(ids, recorded, strict=True) if not p]
        differences = provenance.diff(*recorded)
        body = CSS + '<div class="lab-trace">' + "".join(
            f"<div><i>run <code>{html.escape(r)}</code> recorded no provenance</i></div>" for r in missing
        ) + provenance_diff_html(differences, ids[0], ids[1]) + "</div>"
        return pn.Card(pn.pane.HTML(body, sizing_mode="stretch_width"),
                       title=f"Provenance: {len(differences)} difference{'s' if len(differences) != 1 else ''}",
                       collapsed=not differences, sizing_mode="stretch_width", css_classes=["lab-provenance-diff"])

    def panel(self) -> pn.viewable.Viewable:
        """Inputs for the two runs, the pager and the comparison."""
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
