"""HTML for traces as people read them: a header saying what was asked, how the run ended and how it was
scored; steps with the model's input (collapsed) next to its output, tool calls as ``name(arg=value, …)``
with their result beneath, highlighted code, errors in red, time, tokens and latency per step; a
collapsible span tree. Plain HTML (``<details>``), no JavaScript."""

from __future__ import annotations

import html
import json
import time
from collections import defaultdict

import pandas as pd
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

from widgets.steps import Step

#: Text longer than this (characters or lines) is collapsed behind its first line.
COLLAPSE_CHARS = 600
COLLAPSE_LINES = 12
#: Events listed one per line under a span of the span tree (child spans are always listed).
TREE_LEAVES = 50

_CHAT_KINDS = {"agent_message", "model_call", "human_action"}
_COLOURS = ["#e8f0fe", "#fef7e0", "#e6f4ea", "#f3e8fd", "#e0f7fa", "#fff3e0"]
_FORMATTER = HtmlFormatter(nowrap=True, noclasses=True, style="friendly")

CSS = """
<style>
.lab-trace {font-family: system-ui, sans-serif; font-size: 13px;}
.lab-step {margin: 3px 0; padding: 4px 8px; border-left: 3px solid #ccc; border-radius: 4px;}
.lab-step .meta {color: #666; font-size: 11px; float: right;}
.lab-step .kind {font-weight: 600; margin-right: 6px; color: #444;}
.lab-trace pre {white-space: pre-wrap; word-break: break-word; margin: 2px 0; font-size: 12px;
  background: #f6f8fa; padding: 4px 6px; border-radius: 3px;}
.lab-step pre.lab-result {background: #fff; border: 1px solid #e3e3e3;}
.lab-step .note {color: #555; font-style: italic; margin: 2px 0;}
.lab-step .lab-err {color: #b3261e; font-weight: 600;}
.lab-io {display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 8px;}
.lab-io summary, .lab-step summary {cursor: pointer; color: #555;}
.lab-chat {border-left-color: #4285f4;}
.lab-score {border-left-color: #0f9d58; background: #e6f4ea;}
.lab-error {border-left-color: #db4437; background: #fce8e6;}
.lab-span {border-left-color: #999; background: #fafafa;}
.lab-cont {color: #777; font-size: 11px; margin: 6px 0 0 0;}
.lab-diff td {vertical-align: top; width: 50%;}
.lab-diff .changed {outline: 2px solid #f4b400;}
.lab-diff .missing {color: #999; font-style: italic;}
.lab-scores {border-collapse: collapse; font-size: 12px; margin: 4px 0;}
.lab-scores td, .lab-scores th {border: 1px solid #ddd; padding: 2px 8px; text-align: left;}
.lab-scores th {background: #f3f3f3;}
.lab-provenance td:first-child {font-family: monospace; white-space: nowrap;}
.lab-provenance td {word-break: break-all;}
.lab-tree details {margin-left: 14px;} .lab-tree > details {margin-left: 0;}
.lab-tree .leaf {margin-left: 28px; color: #555; font-size: 12px;} .lab-tree > .leaf {margin-left: 14px;}
mark {background: #fff59d;}
</style>
"""


def _colour(agent: str) -> str:
    return _COLOURS[sum(map(ord, agent)) % len(_COLOURS)] if agent else "#ffffff"


def _mark(text: str, query: str) -> str:
    esc = html.escape(text)
    if not query:
        return esc
    q = html.escape(query)
    low, out, i = esc.lower(), [], 0
    while (j := low.find(q.lower(), i)) >= 0:
        out += [esc[i:j], "<mark>", esc[j:j + len(q)], "</mark>"]
        i = j + len(q)
    return "".join(out) + esc[i:]


def code_html(text: str, lang: str = "", query: str = "") -> str:
    """``text`` escaped, highlighted as ``lang`` (none while a search marks matches)."""
    if lang and not query:
        try:
            lexer = get_lexer_by_name(lang)
        except ClassNotFound:  # ipython3 comes with IPython; plain Python otherwise
            lexer = get_lexer_by_name("python")
        return highlight(text, lexer, _FORMATTER).rstrip("\n")
    return _mark(text, query)


def block(text: str, *, lang: str = "", query: str = "", cls: str = "", label: str = "") -> str:
    """A ``<pre>`` block; long text collapsed behind its first line (open when a search matches inside)."""
    if not text:
        return ""
    body = f'<pre class="{cls}">{code_html(text, lang, query)}</pre>'
    lines = text.count("\n") + 1
    if len(text) > COLLAPSE_CHARS or lines > COLLAPSE_LINES:
        first = html.escape(text.strip().split("\n", 1)[0][:100])
        opened = " open" if query and query.lower() in text.lower() else ""
        return (f"<details{opened}><summary>{label}{first} … ({len(text):,} chars, {lines} lines)</summary>"
                f"{body}</details>")
    return body


def _meta(step: Step) -> str:
    parts = [f"#{step.seq}"]
    if step.ts:
        parts.append(time.strftime("%H:%M:%S", time.localtime(step.ts)))
    parts.append(f"t={step.elapsed:.2f}s")
    if step.tokens_in or step.tokens_out:
        parts.append(f"{step.tokens_in:,}→{step.tokens_out:,} tok")
    if step.latency is not None:
        parts.append(f"{step.latency:.2f}s")
    if step.cost is not None:
        parts.append(f"${step.cost:.4f}")
    return " · ".join(parts)


def step_html(step: Step, *, query: str = "", extra_class: str = "") -> str:
    """One step as an HTML block (indented by its depth in the span tree)."""
    if step.error:
        cls = "lab-error"
    elif step.kind == "score":
        cls = "lab-score"
    elif step.kind in _CHAT_KINDS:
        cls = "lab-chat"
    elif step.kind == "span":
        cls = "lab-span"
    else:
        cls = ""
    who = f"<b>{html.escape(step.agent)}</b> " if step.agent else ""
    title = f" {html.escape(step.title)}" if step.title else ""
    bg = f"background:{_colour(step.agent)};" if step.kind in _CHAT_KINDS and not step.error else ""
    parts = [f'<div><span class="kind">{html.escape(step.kind.replace("_", " "))}</span>{who}{title}'
             f'<span class="meta">{_meta(step)}</span></div>']
    if step.error:
        parts.append(f'<div class="lab-err">✖ {_mark(step.error[:300], query)}</div>')
    if step.note:
        parts.append(f'<div class="note">{_mark(step.note, query)}</div>')
    if step.kind == "model_call":
        n_msgs = step.input.count("\n\n[") + 1 if step.input else 0
        opened = " open" if query and query.lower() in step.input.lower() else ""
        left = (f"<details{opened}><summary>input ({n_msgs} messages, {len(step.input):,} chars)</summary>"
                f"<pre>{_mark(step.input, query)}</pre></details>") if step.input else "<i>no input recorded</i>"
        right = block(step.text, lang=step.lang, query=query) or "<i>no output</i>"
        parts.append(f'<div class="lab-io"><div>{left}</div><div>{right}</div></div>')
    elif step.kind != "span":
        parts.append(block(step.text, lang=step.lang, query=query))
    if step.result:
        parts.append(block(step.result, query=query, cls="lab-result", label="→ "))
    return (f'<div class="lab-step {cls} {extra_class}" data-seq="{step.seq}" data-kind="{step.kind}" '
            f'style="margin-left:{min(step.depth, 12) * 18}px;{bg}">{"".join(parts)}</div>')


def steps_html(steps: list[Step], *, query: str = "", spans: dict[str, Step] | None = None) -> str:
    """A page of steps. When a step returns to a span that earlier steps left (DERA's Decider speaking
    again after the Researcher), a line names the span it continues, so the turn is not read as the
    previous speaker's child."""
    out, last_parent = [], None
    for i, s in enumerate(steps):
        if spans and s.parent_id and s.parent_id != last_parent and s.parent_id in spans:
            prev = steps[i - 1] if i else None
            if prev is None or prev.span_id != s.parent_id:
                owner = spans[s.parent_id]
                out.append(f'<div class="lab-cont" style="margin-left:{min(owner.depth, 12) * 18}px">'
                           f'↳ {html.escape(owner.title)}'
                           f'{" · " + html.escape(owner.agent) if owner.agent and owner.agent != owner.title else ""}'
                           f' (continued, span of step #{owner.seq})</div>')
        out.append(step_html(s, query=query))
        last_parent = s.parent_id
    return CSS + '<div class="lab-trace">' + "".join(out) + "</div>"


def diff_html(rows: list[tuple[Step | None, Step | None]]) -> str:
    """Aligned rows of two runs as a two-column table; paired steps whose text or result differs are
    outlined."""
    out = [CSS, '<table class="lab-trace lab-diff" style="width:100%">']
    for left, right in rows:
        changed = (left is not None and right is not None
                   and (left.text, left.result) != (right.text, right.result))
        cells = []
        for s in (left, right):
            if s is None:
                cells.append('<td class="missing">— no matching step —</td>')
            else:
                cells.append(f"<td>{step_html(s, extra_class='changed' if changed else '')}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def scores_html(scores: pd.DataFrame) -> str:
    """A run's scores as a small table: scorer, dimension, value (mean of several graders), provenance and
    who gave it (each grader's value)."""
    if scores.empty:
        return "<i>not scored yet</i>"
    rows = []
    for (scorer, dim, prov), g in scores.groupby(["scorer", "dimension", "provenance"], sort=False, dropna=False):
        vals = g["value"].dropna()
        value = f"{vals.mean():.3g}" if len(vals) else ", ".join(map(str, g["label"].dropna().unique()))
        if len(vals) and g["label"].notna().any() and len(g) == 1:
            value += f" ({g['label'].iloc[0]})"
        by = ", ".join(f"{src} {v:.3g}" if len(g) > 1 and pd.notna(v) else str(src)
                       for src, v in zip(g["source"].fillna("—"), g["value"], strict=True))
        rows.append(f"<tr><td>{html.escape(str(scorer))}</td><td>{html.escape(str(dim))}</td>"
                    f"<td><b>{html.escape(value)}</b></td><td>{html.escape(str(prov))}</td>"
                    f"<td>{html.escape(by)}</td></tr>")
    return ('<table class="lab-scores"><tr><th>scorer</th><th>dimension</th><th>value</th><th>provenance</th>'
            f'<th>by</th></tr>{"".join(rows)}</table>')


def _value(v: object) -> str:
    return html.escape(v if isinstance(v, str) else json.dumps(v, default=str))


def provenance_html(provenance: dict) -> str:
    """A run's provenance (:func:`lab.provenance.of_run`) as a key/value table, nested keys dotted."""
    from lab.provenance import flatten

    if not provenance:
        return "<i>no provenance recorded (an imported run, or one recorded before the lab kept it)</i>"
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_value(v)}</td></tr>" for k, v in flatten(provenance).items())
    return f'<table class="lab-scores lab-provenance"><tr><th>key</th><th>value</th></tr>{rows}</table>'


def provenance_diff_html(differences: list[tuple[str, object, object]], left: str, right: str) -> str:
    """What differs between two runs' provenance (:func:`lab.provenance.diff`) as a table: key, left, right."""
    if not differences:
        return "<i>the two runs have the same provenance</i>"
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_value(a)}</td><td>{_value(b)}</td></tr>"
                   for k, a, b in differences)
    return (f'<table class="lab-scores lab-provenance"><tr><th>key</th><th>{html.escape(left)}</th>'
            f'<th>{html.escape(right)}</th></tr>{rows}</table>')


def tree_html(steps: list[Step]) -> str:
    """The span tree as nested ``<details>``: each span with its agent, events below it, tokens and time;
    child spans nested in order, other events as one line each."""
    by_span = {s.span_id: s for s in steps if s.span_id}
    children: dict[str | None, list[Step]] = defaultdict(list)
    for s in steps:
        children[s.parent_id if s.parent_id in by_span else None].append(s)

    def stats(s: Step) -> tuple[int, int, float]:
        n, tok, end = 0, 0, s.elapsed
        for c in children.get(s.span_id, []):
            cn, ctok, cend = stats(c)
            n, tok, end = n + 1 + cn, tok + c.tokens_in + c.tokens_out + ctok, max(end, cend)
        return n, tok, end

    def leaves(kids: list[Step], depth: int) -> str:
        shown = ([k for k in kids if k.span_id in children]
                 + [k for k in kids if k.span_id not in children][:TREE_LEAVES])
        keep = {id(k) for k in shown}
        more = len(kids) - len(keep)
        out = "".join(node(k, depth) for k in kids if id(k) in keep)
        return out + (f'<div class="leaf">… {more:,} more events (see the steps below)</div>' if more > 0 else "")

    def node(s: Step, depth: int) -> str:
        kids = children.get(s.span_id, []) if s.span_id else []
        label = f"#{s.seq} {html.escape(s.kind.replace('_', ' '))} {html.escape(s.title)}"
        if s.agent and s.agent != s.title:
            label += f" · <b>{html.escape(s.agent)}</b>"
        if not kids:
            err = ' <span class="lab-err">✖</span>' if s.error else ""
            return f'<div class="leaf">{label}{err}</div>'
        n, tok, end = stats(s)
        summary = f"{label} — {n} events · {tok:,} tokens · {end - s.elapsed:.2f}s"
        opened = " open" if depth == 0 else ""
        return f"<details{opened}><summary>{summary}</summary>{leaves(kids, depth + 1)}</details>"

    return CSS + '<div class="lab-trace lab-tree">' + leaves(children[None], 0) + "</div>"
