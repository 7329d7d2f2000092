"""HTML for trace steps: chat bubbles for messages, code blocks for tools and sandbox commands,
collapsible long outputs, tokens and time per step. Plain HTML (``<details>``), no JavaScript."""

from __future__ import annotations

import html

from widgets.steps import Step

#: Text longer than this (characters or lines) is collapsed behind its first line.
COLLAPSE_CHARS = 600
COLLAPSE_LINES = 12

_CHAT_KINDS = {"agent_message", "model_call", "human_action"}
_CODE_KINDS = {"tool_call", "tool_result", "sandbox_exec", "sandbox_file", "error"}
_COLOURS = ["#e8f0fe", "#fef7e0", "#e6f4ea", "#fce8e6", "#f3e8fd", "#e0f7fa"]

CSS = """
<style>
.lab-trace {font-family: system-ui, sans-serif; font-size: 13px;}
.lab-step {margin: 3px 0; padding: 4px 8px; border-left: 3px solid #ccc; border-radius: 4px;}
.lab-step .meta {color: #666; font-size: 11px;}
.lab-step .kind {font-weight: 600; margin-right: 6px;}
.lab-step pre {white-space: pre-wrap; word-break: break-word; margin: 2px 0; font-size: 12px;
  background: #f6f8fa; padding: 4px; border-radius: 3px;}
.lab-chat {border-left-color: #4285f4;}
.lab-score {border-left-color: #0f9d58; background: #e6f4ea;}
.lab-error {border-left-color: #db4437; background: #fce8e6;}
.lab-span {border-left-color: #999; background: #fafafa;}
.lab-diff td {vertical-align: top; width: 50%;}
.lab-diff .changed {outline: 2px solid #f4b400;}
.lab-diff .missing {color: #999; font-style: italic;}
mark {background: #fff59d;}
</style>
"""


def _colour(agent: str) -> str:
    return _COLOURS[sum(map(ord, agent)) % len(_COLOURS)] if agent else "#ffffff"


def _body(text: str, query: str) -> str:
    esc = html.escape(text)
    if query:
        q = html.escape(query)
        low = esc.lower()
        out, i, ql = [], 0, len(q)
        while (j := low.find(q.lower(), i)) >= 0:
            out += [esc[i:j], "<mark>", esc[j:j + ql], "</mark>"]
            i = j + ql
        esc = "".join(out) + esc[i:]
    lines = text.count("\n") + 1
    if len(text) > COLLAPSE_CHARS or lines > COLLAPSE_LINES:
        first = html.escape(text.split("\n", 1)[0][:120])
        return (f"<details><summary>{first} … ({len(text):,} chars, {lines} lines)</summary>"
                f"<pre>{esc}</pre></details>")
    return f"<pre>{esc}</pre>" if text else ""


def step_html(step: Step, *, query: str = "", extra_class: str = "") -> str:
    """One step as an HTML block (indented by its depth in the span tree)."""
    if step.kind == "score":
        cls = "lab-score"
    elif step.kind == "error":
        cls = "lab-error"
    elif step.kind in _CHAT_KINDS:
        cls = "lab-chat"
    elif step.kind == "span":
        cls = "lab-span"
    else:
        cls = ""
    tokens = f" · {step.tokens_in}→{step.tokens_out} tok" if step.tokens_in or step.tokens_out else ""
    meta = f"#{step.seq} · t={step.elapsed:.2f}s · +{step.dt:.2f}s{tokens}"
    who = f"<b>{html.escape(step.agent)}</b> " if step.agent else ""
    title = f" {html.escape(step.title)}" if step.title else ""
    bg = f"background:{_colour(step.agent)};" if step.kind in _CHAT_KINDS else ""
    body = "" if step.kind == "span" else _body(step.text, query)
    return (f'<div class="lab-step {cls} {extra_class}" data-seq="{step.seq}" '
            f'style="margin-left:{min(step.depth, 12) * 18}px;{bg}">'
            f'<div><span class="kind">{html.escape(step.kind)}</span>{who}{title}'
            f' <span class="meta">{meta}</span></div>{body}</div>')


def steps_html(steps: list[Step], *, query: str = "") -> str:
    """A page of steps."""
    return CSS + '<div class="lab-trace">' + "".join(step_html(s, query=query) for s in steps) + "</div>"


def diff_html(rows: list[tuple[Step | None, Step | None]]) -> str:
    """Aligned rows of two runs as a two-column table; paired steps whose text differs are outlined."""
    out = [CSS, '<table class="lab-trace lab-diff" style="width:100%">']
    for left, right in rows:
        changed = left is not None and right is not None and left.text != right.text
        cells = []
        for s in (left, right):
            if s is None:
                cells.append('<td class="missing">— no matching step —</td>')
            else:
                cells.append(f"<td>{step_html(s, extra_class='changed' if changed else '')}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)
