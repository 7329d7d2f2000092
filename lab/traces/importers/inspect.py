"""Import Inspect AI eval logs (``.eval`` and ``.json``) as finished runs, read with Inspect's own reader.

One run per sample and epoch (``inspect-<eval id>-<sample id>-e<epoch>``), its task ``<task>/<sample id>``
so every run of a sample — agents and human experts, any log — compares on the same item. Each run holds
``run_started`` (the sample's prompt, target, model, solver plan, sandbox), Inspect's spans as ``span``
events, one ``model_call`` per model event (request and reply messages, usage, latency), ``tool_call`` and
``tool_result`` per tool event, ``sandbox_exec``/``sandbox_file`` per sandbox event, errors and limits,
the sample's scores (source ``inspect:<scorer>``; intermediate scores as non-final), and ``run_finished``
with the answer.

Timing: events' ``elapsed`` is Inspect's ``working_start`` (working time, waits for rate limits and
sandboxes excluded); a run's ``elapsed`` is the sample's ``working_time``, else its ``total_time``. A sample
solved by ``human_agent``/``human_cli`` is a human run (``agent="human"``, ``model="human:<expert>"``)
timed by the human agent's own clock (``HumanAgentState`` time, pauses excluded), its ``task score``
checks as intermediate scores and its recorded terminal sessions as ``human_action`` events; the expert's name
comes from the sample's or eval's metadata (``expert``, ``human``, ``annotator``, ``user``), else from the agent's
``user`` parameter.

Needs the ``inspect`` extra (``pip install 'expertlab[inspect]'``).
"""

from __future__ import annotations

import hashlib
import math
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import lab.traces.schema as schema
from lab.traces.errors import TraceImportError
from lab.traces.schema import Event, RunStatus, Score
from lab.traces.store import TraceStore, dumps, score_event

SOURCE = "inspect"
HUMAN_SOLVERS = frozenset({"human_agent", "human_cli"})
_HUMAN_STATE = "HumanAgentState:"
_EXPERT_KEYS = ("expert", "human", "annotator", "baseliner", "user")
_CLIP = 20_000  # characters kept of one tool result or sandbox output


def _reader() -> Any:
    try:
        from inspect_ai import log as inspect_log
    except ImportError as e:  # pragma: no cover - depends on the install
        raise TraceImportError("reading Inspect logs needs Inspect AI: pip install 'expertlab[inspect]'") from e
    return inspect_log


def read_logs(paths: list[str | os.PathLike[str]]) -> list[tuple[Path, Any]]:
    """Read Inspect eval logs with ``inspect_ai.log.read_eval_log``.

    Raises:
        TraceImportError: A file is missing, is not an Inspect log, or holds no samples (named).
    """
    inspect_log = _reader()
    logs = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise TraceImportError(f"{path}: no such file (expected an Inspect .eval or .json log)")
        try:
            log = inspect_log.read_eval_log(str(path))
        except Exception as e:  # noqa: BLE001 - Inspect raises zip, JSON, pydantic and value errors
            why = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise TraceImportError(f"{path}: not a readable Inspect eval log ({why})") from e
        if not log.samples:
            raise TraceImportError(f"{path}: the Inspect log holds no samples (status {log.status})")
        logs.append((path, log))
    return logs


def _ts(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = []
    for c in content or []:
        t = getattr(c, "text", None) or getattr(c, "reasoning", None)
        if t:
            parts.append(t)
    return "\n".join(parts)


def message_dict(m: Any) -> dict[str, Any]:
    """An Inspect ``ChatMessage`` in the lab's (OpenAI Chat Completions) message shape."""
    d: dict[str, Any] = {"role": m.role, "content": _text(m.content)}
    calls = getattr(m, "tool_calls", None)
    if calls:
        d["tool_calls"] = [{"id": c.id, "type": "function", "function": {"name": c.function,
                                                                         "arguments": c.arguments}}
                           for c in calls]
    if getattr(m, "tool_call_id", None):
        d["tool_call_id"] = m.tool_call_id
    if getattr(m, "function", None):
        d["name"] = m.function
    return d


def _float(value: Any) -> float | None:
    from inspect_ai.scorer import value_to_float

    if value is None or isinstance(value, (list, dict)):
        return None
    try:
        v = float(value_to_float()(value))
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _scores(name: str, score: Any, *, item: str, final: bool, details: dict[str, Any] | None = None) -> list[Score]:
    """Lab scores of one Inspect ``Score`` (a dict value gives one score per key, as dimensions)."""
    prov = schema.Provenance.MODEL.value if "model_graded" in name else schema.Provenance.RULE.value
    info = {k: v for k, v in (("answer", score.answer), ("explanation", score.explanation),
                               ("metadata", score.metadata)) if v not in (None, "", {})}
    info.update(details or {})
    values = score.value.items() if isinstance(score.value, dict) else [("overall", score.value)]
    out = []
    for dim, v in values:
        label = v if isinstance(v, str) else None
        out.append(Score(name, _float(v), provenance=prov, source=f"{SOURCE}:{name}", item_id=item, dimension=dim,
                         label=label, final=final, details=info))
    return out


def _solver(log: Any) -> str:
    if log.eval.solver:
        return str(log.eval.solver)
    steps = [s.solver for s in (log.plan.steps if log.plan else [])]
    return steps[-1] if steps else "inspect"


def _human_expert(log: Any, sample: Any) -> tuple[bool, str | None]:
    """Whether a human agent solved the sample, and the expert's name where recorded."""
    steps = log.plan.steps if log.plan else []
    solvers = {s.solver for s in steps} | {str(log.eval.solver or "")}
    store = sample.store or {}
    human = (bool(solvers & HUMAN_SOLVERS) or any(k.startswith(_HUMAN_STATE) for k in store)
             or (sample.metadata or {}).get("is_human") is True)  # a lab run exported as an Inspect log
    if not human:
        return False, None
    for meta in (sample.metadata or {}, log.eval.metadata or {}):
        for key in _EXPERT_KEYS:
            if meta.get(key):
                return True, str(meta[key])
    for s in steps:
        if s.solver in HUMAN_SOLVERS and (s.params or {}).get("user"):
            return True, str(s.params["user"])
    return True, None


class _Run:
    """Builds one run's events in order."""

    def __init__(self, run_id: str, task: str, start: float, end: float, agent: str | None) -> None:
        self.run_id, self.task, self.start, self.end, self.agent = run_id, task, start, end, agent
        self.sandbox = SOURCE  # the Inspect sandbox type, once known
        self.events: list[Event] = []
        self.spans: dict[str, str] = {}

    def span(self, inspect_id: str | None) -> str | None:
        if not inspect_id:
            return None
        if inspect_id not in self.spans:
            self.spans[inspect_id] = hashlib.sha256(f"{self.run_id}:{inspect_id}".encode()).hexdigest()[:16]
        return self.spans[inspect_id]

    def own_id(self) -> str:
        return hashlib.sha256(f"{self.run_id}:#{len(self.events)}".encode()).hexdigest()[:16]

    def elapsed(self, ev: Any) -> float:
        ws = getattr(ev, "working_start", None)
        if isinstance(ws, (int, float)) and 0 <= ws <= self.end + 1.0:
            return float(min(ws, self.end))
        ts = _ts(getattr(ev, "timestamp", None))
        return min(max((ts or self.start) - self.start, 0.0), self.end)

    def add(self, kind: str, attrs: dict[str, Any], *, ts: float, elapsed: float, span_id: str | None = None,
            parent: str | None = None, agent: str | None = None) -> None:
        self.events.append(Event(self.run_id, kind, attrs, len(self.events), ts, elapsed,
                                 span_id or self.own_id(), parent, agent or self.agent))

    def add_score(self, score: Score, *, ts: float, elapsed: float, parent: str | None = None) -> None:
        ev = score_event(self.run_id, score, elapsed=elapsed, ts=ts, span_id=self.own_id(), parent_id=parent)
        ev.seq = len(self.events)
        self.events.append(ev)


def _clip(text: Any) -> str:
    s = text if isinstance(text, str) else dumps(text)
    return s if len(s) <= _CLIP else s[:_CLIP] + f"\n[... {len(s) - _CLIP} more characters]"


def _add_event(r: _Run, ev: Any) -> None:
    """One Inspect transcript event as lab events (kinds the lab has no use for are skipped)."""
    kind = ev.event
    ts = _ts(ev.timestamp) or r.start
    el = r.elapsed(ev)
    parent = r.span(ev.span_id)
    if kind == "span_begin":
        r.add(*schema.span(ev.name, inspect_span_type=ev.type), ts=ts, elapsed=el,
              span_id=r.span(ev.id), parent=r.span(ev.parent_id) if ev.parent_id else parent)
    elif kind == "model":
        out = ev.output
        choice = out.choices[0] if out is not None and out.choices else None
        usage = out.usage if out is not None else None
        latency = ev.working_time if ev.working_time is not None else (out.time if out is not None else None)
        r.add(*schema.model_call(
            system=SOURCE, model=ev.model, input_messages=[message_dict(m) for m in ev.input],
            tool_definitions=[{"type": "function", "function": {
                "name": t.name, "description": t.description,
                "parameters": t.parameters.model_dump(exclude_none=True)}} for t in ev.tools] if ev.tools else None,
            inspect_model_role=ev.role or None,
            output_messages=[message_dict(choice.message)] if choice is not None else None,
            response_model=(out.model or ev.model) if out is not None and choice is not None else None,
            finish_reasons=["error"] if ev.error else [choice.stop_reason] if choice is not None else None,
            input_tokens=usage.input_tokens if usage is not None else None,
            output_tokens=usage.output_tokens if usage is not None else None,
            error_message=str(ev.error) if ev.error else None,
            latency=float(latency) if latency is not None else None), ts=ts, elapsed=el, parent=parent)
    elif kind == "tool":
        r.add(*schema.tool_call(tool_name=ev.function, tool_call_id=ev.id, arguments=ev.arguments),
              ts=ts, elapsed=el, parent=parent)
        done = _ts(ev.completed)
        r.add(*schema.tool_result(
            tool_name=ev.function, tool_call_id=ev.id,
            content=_clip(ev.result if isinstance(ev.result, str) else _text(ev.result)),
            duration=float(ev.working_time) if ev.working_time is not None else None,
            error_type=ev.error.type if ev.error is not None else None,
            error_message=ev.error.message if ev.error is not None else None), ts=done or ts,
              elapsed=min(el + (ev.working_time or 0.0), r.end), parent=parent)
    elif kind == "sandbox":
        backend = f"{SOURCE}:{r.sandbox}"
        done = _ts(ev.completed)
        took = max(done - ts, 0.0) if done is not None else None
        if ev.action == "exec":
            r.add(*schema.sandbox_exec(backend=backend, op=ev.action, command_args=["sh", "-c", ev.cmd or ""],
                                       exit_code=ev.result, sandbox_duration=took, stdout=_clip(ev.output or "")),
                  ts=ts, elapsed=el, parent=parent)
        else:
            r.add(*schema.sandbox_file(backend=backend, op=ev.action, path=ev.file, sandbox_duration=took,
                                       output=_clip(ev.output) if ev.output else None),
                  ts=ts, elapsed=el, parent=parent)
    elif kind == "error":
        r.add(*schema.error(message=ev.error.message, traceback=ev.error.traceback[-8000:]),
              ts=ts, elapsed=el, parent=parent)
    elif kind == "sample_limit":
        r.add(*schema.limit(limit_type=ev.type, value=ev.limit, reason=ev.message),
              ts=ts, elapsed=el, parent=parent)
    elif kind == "info":
        r.add(*schema.agent_message(content=_clip(ev.data), inspect_source=ev.source),
              ts=ts, elapsed=el, parent=parent)
    elif kind == "score" and ev.intermediate:
        for s in _scores(ev.scorer or "score", ev.score, item=r.task, final=False):
            r.add_score(s, ts=ts, elapsed=el, parent=parent)


def sample_run(path: Path, log: Any, sample: Any) -> tuple[dict[str, Any], list[Event]]:
    """The run (fields and events) of one sample and epoch of an Inspect log."""
    from inspect_ai.scorer import Score as InspectScore

    spec = log.eval
    run_id = f"inspect-{spec.eval_id}-{sample.id}-e{sample.epoch}"
    task = f"{spec.task}/{sample.id}"
    human, expert = _human_expert(log, sample)
    store = sample.store or {}
    start = _ts(sample.started_at) or _ts(spec.created) or 0.0
    end_ts = _ts(sample.completed_at)
    human_time = store.get(f"{_HUMAN_STATE}accumulated_time") if human else None
    if isinstance(human_time, (int, float)) and human_time > 0:
        elapsed = float(human_time)
    elif sample.working_time is not None:
        elapsed = float(sample.working_time)
    elif sample.total_time is not None:
        elapsed = float(sample.total_time)
    else:
        elapsed = max((end_ts or start) - start, 0.0)
    end_ts = end_ts or start + elapsed
    agent = "human" if human else f"{SOURCE}:{_solver(log)}"
    model = (f"human:{expert}" if expert else "human") if human else spec.model
    meta = sample.metadata or {}
    if (spec.metadata or {}).get("exported_by") == "expertlab":  # lab runs coming back: same task, agent, model
        task, agent, model = str(sample.id), meta.get("agent") or agent, meta.get("model") or model
    prompt = sample.input if isinstance(sample.input, str) else "\n".join(
        _text(m.content) for m in sample.input if m.role == "user")
    limits = {k: getattr(spec.config, k, None) for k in ("working_limit", "time_limit", "message_limit",
                                                          "token_limit")}
    time_limit = limits["working_limit"] or limits["time_limit"]
    config: dict[str, Any] = {
        "source": SOURCE, "file": str(path), "task": task, "agent": agent, "model": model,
        "inspect_task": spec.task, "inspect_eval_id": spec.eval_id, "inspect_run_id": spec.run_id,
        "sample_id": sample.id, "epoch": sample.epoch, "prompt": prompt, "target": sample.target,
        "solver": _solver(log), "plan": [s.solver for s in (log.plan.steps if log.plan else [])],
        "sandbox": spec.sandbox.type if spec.sandbox else None, "metadata": sample.metadata or {},
        "limits": {k: v for k, v in limits.items() if v is not None},
    }
    if time_limit:
        config["time_limit"] = time_limit
    if human:
        config["expert"] = expert
    r = _Run(run_id, task, start, elapsed, agent)
    r.sandbox = config["sandbox"] or "none"
    r.add(*schema.run_started(config=config), ts=start, elapsed=0.0)
    for ev in sample.events or []:
        _add_event(r, ev)
    if human:
        for file, text in (store.get(f"{_HUMAN_STATE}logs") or {}).items():  # the recorded terminal session
            r.add(*schema.human_action(action="session_log", path=file, content=_clip(text)),
                  ts=end_ts, elapsed=elapsed)
        names = list(sample.scores or {}) or ["task_score"]
        for sc in store.get(f"{_HUMAN_STATE}scorings") or []:  # `task score` checks while working
            t = min(float(sc.get("time", 0.0)), elapsed)
            for i, s in enumerate(sc.get("scores") or []):
                name = names[i] if i < len(names) else f"task_score_{i}"
                for score in _scores(name, InspectScore.model_validate(s), item=task, final=False):
                    r.add_score(score, ts=start + t, elapsed=t)
    for name, s in (sample.scores or {}).items():
        for score in _scores(name, s, item=task, final=True, details={"target": sample.target}):
            r.add_score(score, ts=end_ts, elapsed=elapsed)
    answer = store.get(f"{_HUMAN_STATE}answer") if human else None
    if answer is None and sample.output is not None:
        answer = sample.output.completion
    status = RunStatus.FAILED.value if sample.error else RunStatus.DONE.value
    usage = {m: u.model_dump(exclude_none=True) for m, u in (sample.model_usage or {}).items()}
    r.add(*schema.run_finished(status, answer=answer, error=sample.error.message if sample.error else None,
                               stop_reason=f"limit:{sample.limit.type}" if sample.limit else schema.ABSENT,
                               inspect_model_usage=usage or None), ts=end_ts, elapsed=elapsed)
    run = {"run_id": run_id, "task": task, "agent": agent, "model": model, "is_human": human, "status": status,
           "created_at": start, "finished_at": end_ts, "elapsed": elapsed, "seed": None,
           "error": sample.error.message if sample.error else None,
           "batch_id": f"{SOURCE}:{spec.eval_id}", "config": config}
    return run, r.events


def import_inspect(store: TraceStore, paths: list[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[str]:
    """Import Inspect eval logs, all or nothing.

    Args:
        store: Where the runs go.
        paths: ``.eval`` or ``.json`` log files.

    Returns:
        The new run ids, one per sample and epoch.

    Raises:
        TraceImportError: A file cannot be read as an Inspect log (named); nothing was written.
        StoreError: A run was imported before; nothing was written.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    runs = []
    for path, log in read_logs(list(paths)):
        for sample in log.samples:
            try:
                runs.append(sample_run(path, log, sample))
            except (AttributeError, TypeError, ValueError, KeyError) as e:
                raise TraceImportError(f"{path}: sample {sample.id} epoch {sample.epoch}: cannot import "
                                       f"({type(e).__name__}: {e})") from e
    with store.transaction():
        return [store.restore_run(run, events) for run, events in runs]
