"""A run's events as display steps, read from the keys the lab's writers record (``lab.traces.schema``,
``lab.models.recording``, the loops, the sandbox, the SUPER and METR importers): tree depth, what the step
said or did, what came back, errors, tokens, time, latency; search; alignment of two runs.

Pure functions over :class:`lab.traces.Event` lists, so the trace viewer stays fast on 5,000-event runs
and is testable without a browser.
"""

from __future__ import annotations

import difflib
import json
import re
import shlex
from dataclasses import dataclass
from typing import Any, TypedDict

from lab.traces import Event, schema

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")


@dataclass(slots=True)
class Step:
    """One event (a tool call together with its result) as the trace viewer shows it.

    Attributes:
        seq: The event's sequence number in its run.
        kind: Event kind (``agent_message``, ``tool_call`` ...).
        agent: Agent or role name ('' when none).
        depth: Nesting depth in the span tree (0 for top-level events).
        title: One-line heading (span name, tool name, scorer = value ...).
        text: What the step said or did: a message, the model's reply, a call ``name(arg=value)``, a command.
        elapsed: Working time at the event (seconds since the run started).
        dt: Working time since the previous event (seconds).
        tokens_in: Input tokens of a model call (0 when none).
        tokens_out: Output tokens of a model call (0 when none).
        span_id: The event's span.
        parent_id: Its parent span.
        ts: Wall-clock time (Unix seconds).
        input: What the model was given (model calls; shown collapsed next to the output).
        note: A thought or remark shown above the text (SUPER's thoughts, a DERA answer).
        result: What came back (a tool's result, a command's output), shown beneath the text.
        error: Error text ('' when none); the step is marked in red.
        lang: Language the text is highlighted as (``python``, ``ipython3``, ``bash``, ``json``; '' for prose).
        latency: Seconds the step's work took (model call latency, tool or command duration).
        cost: Cost in US dollars where recorded.
        call_id: Tool call id (pairs a call with its result).
    """

    seq: int
    kind: str
    agent: str
    depth: int
    title: str
    text: str
    elapsed: float
    dt: float
    tokens_in: int
    tokens_out: int
    span_id: str | None
    parent_id: str | None
    ts: float = 0.0
    input: str = ""
    note: str = ""
    result: str = ""
    error: str = ""
    lang: str = ""
    latency: float | None = None
    cost: float | None = None
    call_id: str = ""

    @property
    def signature(self) -> tuple[str, str, str]:
        """What must match for two steps of different runs to be aligned."""
        return (self.kind, self.agent, self.title)


def clean(text: Any) -> str:
    r"""Text as a person reads it: terminal colour codes stripped, carriage-return redraws (progress bars)
    reduced to their last state, and escaped newlines (``\n`` written as two characters) made newlines
    when the text has no real ones."""
    if text is None:
        return ""
    s = text if isinstance(text, str) else json.dumps(text, ensure_ascii=False, indent=1, default=str)
    s = _ANSI.sub("", s)
    if "\r" in s:
        s = "\n".join(line.rstrip("\r").rsplit("\r", 1)[-1] for line in s.split("\n"))
    if "\n" not in s and "\\n" in s:
        s = s.replace("\\r\\n", "\n").replace("\\n", "\n").replace("\\t", "\t")
    return s


def call_text(name: str, arguments: Any) -> str:
    """A tool call as ``name(arg=value, …)`` (values as Python literals)."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return f"{name}({arguments})"
    if isinstance(arguments, dict):
        return f"{name}({', '.join(f'{k}={v!r}' for k, v in arguments.items())})"
    return f"{name}({'' if arguments is None else repr(arguments)})"


def _pretty(content: str) -> tuple[str, str]:
    """A model's reply: JSON pretty-printed (and marked as such), anything else as it is."""
    s = content.strip()
    if s[:1] in "{[":
        try:
            return json.dumps(json.loads(s), ensure_ascii=False, indent=1), "json"
        except ValueError:
            pass
    return clean(content), ""


_EXC = re.compile(r"^\s*(\w+(?:Error|Exception|Interrupt)(?::.*)?)$", re.M)
_EXIT = re.compile(r"\[exit code (-?\d+)\]\s*$")


def _error_in(output: str) -> str:
    """The error an output shows: a Python exception line after a traceback, else a non-zero exit code the
    shell tool appended; '' when none."""
    if "Traceback (most recent call last)" in output:
        found = _EXC.findall(output)
        if found:
            return found[-1].strip()
    code = _EXIT.search(output)
    return f"exit code {code.group(1)}" if code and code.group(1) != "0" else ""


def _messages(messages: Any) -> str:
    if not isinstance(messages, list):
        return clean(messages)
    parts = []
    for m in messages:
        if not isinstance(m, dict):
            parts.append(clean(m))
            continue
        body = clean(m.get("content") or "")
        calls = [call_text((c.get("function") or c).get("name", "?"), (c.get("function") or c).get("arguments"))
                 for c in m.get("tool_calls") or [] if isinstance(c, dict)]
        parts.append(f"[{m.get('role', '?')}] " + "\n".join(filter(None, [body, *calls])))
    return "\n\n".join(parts)


def _score_value(a: dict[str, Any]) -> str:
    v, label = a.get(schema.EVAL_SCORE), a.get(schema.EVAL_LABEL)
    if isinstance(v, (int, float)):
        v = f"{v:.3g}"
    return " ".join(str(x) for x in (v, f"({label})" if label and v is not None else label) if x is not None)


def _num(v: Any) -> float | None:
    try:
        return None if v is None or v == "" else float(v)
    except (TypeError, ValueError):
        return None


def _int(v: Any) -> int:
    try:
        return int(v or 0)
    except (TypeError, ValueError):
        return 0


def _fill(step: Step, ev: Event) -> None:
    """Title, text, input, result, error and language of ``step`` from the event's recorded keys."""
    a, kind = ev.attrs, ev.kind
    err = a.get(schema.ERROR_MESSAGE) or ""
    if kind == "model_call":
        step.title = str(a.get(schema.RESPONSE_MODEL) or a.get(schema.MODEL) or "model")
        step.input = _messages(a.get(schema.INPUT_MESSAGES))
        out = a.get(schema.OUTPUT_MESSAGES) or []
        msg = out[0] if out and isinstance(out[0], dict) else {}
        body, step.lang = _pretty(str(msg.get("content") or ""))
        calls = [call_text((c.get("function") or c).get("name", "?"), (c.get("function") or c).get("arguments"))
                 for c in msg.get("tool_calls") or [] if isinstance(c, dict)]
        step.text = "\n".join(filter(None, [body, *calls]))
        if calls and not body:
            step.lang = "python"
        reasons = a.get(schema.FINISH_REASONS) or []
        if reasons and reasons[0] not in ("stop", "tool_calls", None):
            step.title += f" · {reasons[0]}"
        step.error = str(err)
    elif kind == "agent_message":
        step.text = clean(a.get(schema.CONTENT) or "")
        if a.get(schema.ANSWER):
            step.note = f"answer: {a[schema.ANSWER]}"
        if a.get(schema.ACTION):
            step.title = str(a[schema.ACTION])
            if a[schema.ACTION] == "fork":
                step.text = f"forked from run {a.get(schema.FORK_PARENT_RUN_ID)} at step {a.get(schema.FORK_STEP)}"
        step.error = str(a.get(schema.INVALID_REPLY) or err)
    elif kind == "tool_call":
        name = str(a.get(schema.TOOL_NAME) or "tool")
        step.title, step.call_id = name, str(a.get(schema.TOOL_CALL_ID) or "")
        if schema.ACTION in a or schema.OBSERVATION in a:  # an imported SUPER step: thought, action, observation
            action = clean(a.get(schema.ACTION) or "")
            step.note = clean(a.get(schema.THOUGHT) or "")
            step.text = action
            step.lang = "ipython3"  # a notebook cell: Python with !shell and %magic lines
            step.result = clean(a.get(schema.OBSERVATION) or "")
            if str(a.get(schema.PRE_EXECUTED)).lower() == "true":
                step.title += " · pre-executed by the task"
            step.error = _error_in(step.result)
        else:
            step.text, step.lang = call_text(name, a.get(schema.ARGUMENTS)), "python"
    elif kind == "tool_result":
        step.title, step.call_id = str(a.get(schema.TOOL_NAME) or "tool"), str(a.get(schema.TOOL_CALL_ID) or "")
        step.result = clean(a.get(schema.CONTENT) or "")
        step.error = str(a.get(schema.ERROR_TYPE) or err) or _error_in(step.result)
    elif kind == "sandbox_exec":
        argv = a.get(schema.COMMAND_ARGS)
        if argv:
            cmd = argv[-1] if len(argv) >= 3 and argv[1] == "-c" else shlex.join(map(str, argv))
            step.text, step.lang = f"$ {cmd}", "bash"
            out = clean(a.get(schema.STDOUT) or "")
            errout = clean(a.get(schema.STDERR) or "")
            step.result = out + (("\n" if out and not out.endswith("\n") else "") + errout if errout else "")
            code = a.get(schema.EXIT_CODE)
            step.title = f"exit {code}" if code is not None else "sandbox"
            if a.get(schema.TIMED_OUT):
                step.error = "timed out"
            elif code not in (0, None):
                step.error = f"exit code {code}"
        else:
            step.title = str(a.get(schema.SANDBOX_OP) or "sandbox")
            step.text = clean(a.get(schema.SNAPSHOT_REF) or a.get(schema.SNAPSHOT_ARCHIVE) or "")
        step.error = step.error or str(err)
    elif kind == "sandbox_file":
        step.title = str(a.get(schema.SANDBOX_OP) or "file")
        step.text = " → ".join(str(x) for x in (a.get(schema.LOCAL_PATH), a.get(schema.FILE_PATH),
                                                 a.get(schema.SANDBOX_SNAPSHOT)) if x)
        step.result = clean(a.get(schema.SANDBOX_OUTPUT) or "")
        step.error = str(err or a.get(schema.ERROR_TYPE) or "")
    elif kind == "score":
        step.title = f"{a.get(schema.EVAL_NAME, 'score')} = {_score_value(a)}"
        dim = a.get(schema.SCORE_DIMENSION)
        who = " · ".join(str(x) for x in (a.get(schema.SCORE_PROVENANCE), a.get(schema.SCORE_SOURCE)) if x)
        step.note = " · ".join(x for x in (f"dimension {dim}" if dim and dim != "overall" else "", who) if x)
        details = a.get(schema.SCORE_DETAILS)
        why = details.get("explanation") if isinstance(details, dict) else None  # a judge's, in its details
        step.text = clean(a.get(schema.EVAL_EXPLANATION) or why or "")
    elif kind == "run_started":
        cfg = a[schema.CONFIG] if isinstance(a.get(schema.CONFIG), dict) else {}
        step.title = "task"
        step.text = clean(cfg.get("prompt") or a.get(schema.SUPER_QUERY) or cfg.get("task_id") or cfg.get("task") or "")
    elif kind == "run_finished":
        step.title = " · ".join(str(x) for x in (a.get(schema.STATUS), a.get(schema.STOP_REASON)) if x)
        step.text = clean(a.get(schema.ANSWER) or "")
        step.error = str(err)
    elif kind == "error":
        step.title = str(a.get(schema.ERROR_TYPE) or "error")
        step.error = str(err or step.title)
        step.text = clean(a.get(schema.ERROR_TRACEBACK) or "")
        step.note = str(a.get(schema.ERROR_WHERE) or "")
    elif kind == "limit":
        step.title = f"limit reached: {a.get(schema.LIMIT_NAME) or a.get(schema.LIMIT_TYPE)}"
        used = f"used {a.get(schema.LIMIT_USED)} of " if schema.LIMIT_USED in a else "limit "
        step.text = used + str(a.get(schema.LIMIT_VALUE))
        step.note = str(a.get(schema.REASON) or "")
    elif kind == "human_action":
        step.title = str(a.get(schema.ACTION) or a.get(schema.AUDIT) or "action")
        rest = {k: v for k, v in a.items() if k != schema.ACTION}
        step.text = clean(a.get(schema.CONTENT) or a.get(schema.TERMINAL_LINE) or a.get(schema.ANSWER) or (rest or ""))
    elif kind == "span":
        step.title = str(a.get(schema.SPAN_NAME) or "span")
    else:
        step.text = clean(a.get(schema.CONTENT) or a or "")
        step.error = str(err)


def build_steps(events: list[Event], *, start: list[Step] | None = None) -> list[Step]:
    """Turn events (in sequence order) into steps; a tool result joins the step of its call.

    Args:
        events: A run's events, ordered by ``seq``.
        start: Steps already built for earlier events of the same run (for live, incremental updates);
            they are extended in place and returned.

    Returns:
        The steps, one per event except tool results that found their call.
    """
    steps = start if start is not None else []
    depth_of: dict[str, int] = {s.span_id: s.depth for s in steps if s.span_id}
    calls = {s.call_id: s for s in steps if s.kind == "tool_call" and s.call_id}
    prev = max((s.elapsed for s in steps if s.kind != "score"), default=0.0)
    for ev in events:
        depth = depth_of.get(ev.parent_id, -1) + 1 if ev.parent_id else 0
        if ev.span_id:
            depth_of[ev.span_id] = depth
        # grades added later carry no working time of their own: they happened after the run
        elapsed = max(ev.elapsed, prev) if ev.kind == "score" else ev.elapsed
        step = Step(seq=ev.seq, kind=ev.kind, agent=ev.agent or "", depth=depth, title="", text="",
                    elapsed=elapsed, dt=max(0.0, elapsed - prev), tokens_in=_int(ev.attrs.get(schema.INPUT_TOKENS)),
                    tokens_out=_int(ev.attrs.get(schema.OUTPUT_TOKENS)), span_id=ev.span_id, parent_id=ev.parent_id,
                    ts=ev.ts, latency=_num(ev.attrs.get(schema.LATENCY) or ev.attrs.get(schema.DURATION)
                                           or ev.attrs.get(schema.SANDBOX_DURATION)),
                    cost=_num(ev.attrs.get(schema.COST)))
        _fill(step, ev)
        call = calls.get(step.call_id) if ev.kind == "tool_result" else None
        if call is not None and not call.result:
            call.result, call.error = step.result, call.error or step.error
            call.latency = step.latency if step.latency is not None else call.latency
        else:
            if step.kind == "tool_call" and step.call_id:
                calls[step.call_id] = step
            steps.append(step)
        prev = max(prev, elapsed)
    return steps


def search(steps: list[Step], query: str) -> list[Step]:
    """Steps whose kind, agent, title, text, note, result or error contains ``query`` (case-insensitive);
    all when empty."""
    q = query.strip().lower()
    if not q:
        return steps
    return [s for s in steps if any(q in x.lower() for x in (s.text, s.title, s.agent, s.kind, s.note, s.result,
                                                             s.error))]


class Totals(TypedDict):
    """A run's totals (:func:`totals`)."""

    steps: int
    tokens_in: int
    tokens_out: int
    elapsed: float
    cost: float | None


def totals(steps: list[Step]) -> Totals:
    """Tokens in/out, working time (grades added afterwards do not count), cost and step count of a run."""
    work = [s.elapsed for s in steps if s.kind != "score"]
    costs = [s.cost for s in steps if s.cost is not None]
    return {
        "steps": len(steps),
        "tokens_in": sum(s.tokens_in for s in steps),
        "tokens_out": sum(s.tokens_out for s in steps),
        "elapsed": max(work, default=0.0),
        "cost": sum(costs) if costs else None,
    }


def align(a: list[Step], b: list[Step]) -> list[tuple[Step | None, Step | None]]:
    """Pair the steps of two runs so that matching steps sit side by side (a diff of their signatures).

    Args:
        a: Steps of the left run.
        b: Steps of the right run.

    Returns:
        Rows ``(left, right)``; ``None`` where one run has a step the other lacks. Matching steps whose
        text differs are still paired (the renderer marks them changed).
    """
    rows: list[tuple[Step | None, Step | None]] = []
    sm = difflib.SequenceMatcher(None, [s.signature for s in a], [s.signature for s in b], autojunk=False)
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            rows += zip(a[i1:i2], b[j1:j2], strict=True)
        elif op == "replace":
            n = max(i2 - i1, j2 - j1)
            left, right = a[i1:i2], b[j1:j2]
            rows += [(left[k] if k < len(left) else None, right[k] if k < len(right) else None) for k in range(n)]
        elif op == "delete":
            rows += [(s, None) for s in a[i1:i2]]
        else:
            rows += [(None, s) for s in b[j1:j2]]
    return rows
