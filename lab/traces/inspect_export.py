"""Lab runs out as one Inspect AI eval log (``.eval`` or ``.json``), for Inspect users and ``inspect view``.

Each run is one sample: its id is the run's task and runs of the same task are its epochs (1, 2 ... in
the order they were created). A sample holds the conversation (the last model call's messages and reply,
else the prompt and the answer), one ``ModelEvent`` per model call (with usage), one ``ToolEvent`` per
tool call with its result, one ``ScoreEvent`` per score, the final scores (``<scorer>`` or
``<scorer>.<dimension>``, provenance and source in the score's metadata), the run's working time, and in
its metadata the run's id, agent, model and whether a human expert made it (``is_human``, ``expert``),
which ``lab import inspect`` reads back. Written with ``inspect_ai.log.write_eval_log``; needs the
``inspect`` extra.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lab.traces.schema as schema
from lab.traces.errors import StoreError
from lab.traces.rows import RunRow, ScoreRow
from lab.traces.schema import EventKind
from lab.traces.store import TraceStore

TASK = "expertlab"


def _utc(ts: float | None) -> datetime:
    """A Unix time as an aware UTC datetime (``None`` as the epoch)."""
    return datetime.fromtimestamp(ts or 0.0, tz=timezone.utc)


def _iso(ts: float | None) -> str:
    """A Unix time as ISO 8601 text in UTC."""
    return _utc(ts).isoformat()


def _messages(dicts: list[dict[str, Any]]) -> list[Any]:
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageTool, ChatMessageUser
    from inspect_ai.tool import ToolCall

    out: list[Any] = []
    for d in dicts:
        content, role = str(d.get("content") or ""), d.get("role")
        if role == "system":
            out.append(ChatMessageSystem(content=content))
        elif role == "assistant":
            calls = [ToolCall(id=c.get("id") or f"call_{i}", function=c["function"]["name"],
                              arguments=c["function"].get("arguments") or {})
                     for i, c in enumerate(d.get("tool_calls") or [])]
            out.append(ChatMessageAssistant(content=content, tool_calls=calls or None))
        elif role == "tool":
            out.append(ChatMessageTool(content=content, tool_call_id=d.get("tool_call_id"), function=d.get("name")))
        else:
            out.append(ChatMessageUser(content=content))
    return out


def _score_key(row: ScoreRow, taken: set[str]) -> str:
    """A final score's name in the sample: ``<scorer>`` or ``<scorer>.<dimension>``, with ``:<source>`` added when
    another score took that name already."""
    key = row["scorer"] if row["dimension"] == "overall" else f"{row['scorer']}.{row['dimension']}"
    if key in taken and row["source"]:
        key = f"{key}:{row['source']}"
    return key


def run_sample(store: TraceStore, run: RunRow, epoch: int) -> Any:
    """One run as an Inspect ``EvalSample`` (sample id: the run's task)."""
    from inspect_ai.event import Event, ModelEvent, ScoreEvent, ToolEvent
    from inspect_ai.log import EvalSample
    from inspect_ai.model import GenerateConfig, ModelOutput, ModelUsage
    from inspect_ai.scorer import Score as IScore

    cfg = run["config"] or {}
    prompt = str(cfg.get("prompt") or cfg.get("question") or run["task"] or "")
    events = store.events(run["run_id"])
    t0 = run["created_at"]
    answer, last_call = None, None
    sample_events: list[Event] = []
    usage: dict[str, ModelUsage] = {}
    results = {e.attrs.get(schema.TOOL_CALL_ID): e for e in events if e.kind == EventKind.TOOL_RESULT.value}
    for ev in events:
        a, stamp = ev.attrs, _utc(ev.ts)
        if ev.kind == EventKind.MODEL_CALL.value and a.get(schema.OUTPUT_MESSAGES):
            last_call = a
            model = str(a.get(schema.MODEL) or run["model"] or "unknown")
            out_msg = _messages(a[schema.OUTPUT_MESSAGES])[0]
            u = ModelUsage(input_tokens=int(a.get(schema.INPUT_TOKENS) or 0),
                           output_tokens=int(a.get(schema.OUTPUT_TOKENS) or 0))
            u.total_tokens = u.input_tokens + u.output_tokens
            prev = usage.get(model)
            usage[model] = u if prev is None else ModelUsage(
                input_tokens=prev.input_tokens + u.input_tokens, output_tokens=prev.output_tokens + u.output_tokens,
                total_tokens=prev.total_tokens + u.total_tokens)
            output = ModelOutput.from_content(model, out_msg.text)
            output.choices[0].message = out_msg
            output.usage = u
            sample_events.append(ModelEvent(model=model, input=_messages(a.get(schema.INPUT_MESSAGES) or []),
                                             tools=[], tool_choice="auto", config=GenerateConfig(), output=output,
                                             working_time=a.get(schema.LATENCY), timestamp=stamp,
                                             working_start=ev.elapsed))
        elif ev.kind == EventKind.TOOL_CALL.value:
            res = results.get(a.get(schema.TOOL_CALL_ID))
            arguments = a.get(schema.ARGUMENTS)
            sample_events.append(ToolEvent(
                id=str(a.get(schema.TOOL_CALL_ID) or f"call_{ev.seq}"), function=str(a.get(schema.TOOL_NAME)),
                arguments=arguments if isinstance(arguments, dict) else {},
                result=str(res.attrs.get("content", "")) if res is not None else "",
                working_time=res.attrs.get(schema.DURATION) if res is not None else None, timestamp=stamp,
                working_start=ev.elapsed))
        elif ev.kind == EventKind.SCORE.value:
            value = a.get(schema.EVAL_SCORE)
            sample_events.append(ScoreEvent(
                score=IScore(value=value if value is not None else (a.get(schema.EVAL_LABEL) or 0)),
                scorer=a.get(schema.EVAL_NAME), intermediate=not a.get(schema.SCORE_FINAL, True), timestamp=stamp,
                working_start=ev.elapsed))
        elif ev.kind == EventKind.RUN_FINISHED.value and a.get(schema.ANSWER) is not None:
            answer = a[schema.ANSWER]
    if last_call is not None:
        messages = _messages(last_call.get(schema.INPUT_MESSAGES) or []) + _messages(
            last_call[schema.OUTPUT_MESSAGES])
    else:
        messages = _messages([{"role": "user", "content": prompt}])
        if answer is not None:
            messages += _messages([{"role": "assistant", "content": str(answer)}])
    scores: dict[str, Any] = {}
    for row in store.scores(run["run_id"], final_only=True):
        key = _score_key(row, set(scores))
        value, label = row["value"], row["label"]
        scores[key] = IScore(value=value if value is not None else (label or 0), answer=None if answer is None
                             else str(answer), metadata={"provenance": row["provenance"], "source": row["source"],
                                                         "label": label})
    meta = {"run_id": run["run_id"], "agent": run["agent"], "model": run["model"], "is_human": run["is_human"],
            "status": run["status"]}
    if run["is_human"]:
        meta["expert"] = cfg.get("expert") or str(run["model"] or "human").removeprefix("human:")
    end = run["finished_at"] or t0 + (run["elapsed"] or 0.0)
    output = ModelOutput.from_content(str(run["model"] or "unknown"), "" if answer is None else str(answer))
    return EvalSample(
        id=str(run["task"] or run["run_id"]), epoch=epoch, input=prompt, target=str(cfg.get("target") or ""),
        messages=messages, output=output, scores=scores, metadata=meta, events=sample_events,
        model_usage=usage, started_at=_iso(t0), completed_at=_iso(end), total_time=round(end - t0, 3),
        working_time=None if run["elapsed"] is None else round(run["elapsed"], 3),
    )


def runs_log(store: TraceStore, run_ids: list[str]) -> Any:
    """The Inspect ``EvalLog`` of ``run_ids`` (one sample per run).

    Raises:
        StoreError: A run id is unknown, or no run was given.
    """
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalMetric, EvalResults, EvalScore, EvalSpec, EvalStats

    if not run_ids:
        raise StoreError("no runs to export")
    runs = [store.get_run(r) for r in run_ids]
    epochs: Counter[str] = Counter()
    samples = []
    for run in sorted(runs, key=lambda r: (r["created_at"], r["run_id"])):
        key = str(run["task"] or run["run_id"])
        epochs[key] += 1
        samples.append(run_sample(store, run, epochs[key]))
    models = {str(r["model"]) for r in runs if not r["is_human"] and r["model"]}
    values: dict[str, list[float]] = defaultdict(list)
    for s in samples:
        for k, sc in (s.scores or {}).items():
            if isinstance(sc.value, (int, float)):
                values[k].append(float(sc.value))
    created = min(r["created_at"] for r in runs)
    ids = sorted({s.id for s in samples})
    spec = EvalSpec(created=_iso(created), task=TASK, dataset=EvalDataset(name=TASK, samples=len(ids), sample_ids=ids),
                    model=models.pop() if len(models) == 1 else "expertlab/mixed",
                    config=EvalConfig(epochs=max(epochs.values())), metadata={"exported_by": "expertlab"})
    results = EvalResults(total_samples=len(samples), completed_samples=len(samples), scores=[
        EvalScore(name=k, scorer=k, scored_samples=len(v),
                  metrics={"mean": EvalMetric(name="mean", value=sum(v) / len(v))}) for k, v in values.items()])
    usage: dict[str, Any] = {}
    for s in samples:
        for m, u in s.model_usage.items():
            usage[m] = u if m not in usage else usage[m] + u
    stats = EvalStats(started_at=_iso(created), completed_at=_iso(max(r["finished_at"] or created for r in runs)),
                      model_usage=usage)
    return EvalLog(status="success", eval=spec, results=results, stats=stats, samples=samples)


def export_file(store: TraceStore, run_ids: list[str], path: str | os.PathLike[str]) -> int:
    """Write ``run_ids`` as one Inspect eval log (format from the suffix: ``.eval`` or ``.json``).

    Returns:
        The number of samples (runs) written.

    Raises:
        StoreError: A run id is unknown, the suffix is neither ``.eval`` nor ``.json``, or the file cannot
            be written.
    """
    from inspect_ai.log import write_eval_log

    path = Path(path)
    if path.suffix not in (".eval", ".json"):
        raise StoreError(f"{path}: an Inspect log is named .eval or .json")
    log = runs_log(store, run_ids)
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    try:
        write_eval_log(log, str(tmp))
        tmp.replace(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"cannot write {path}: {e.strerror or e}") from e
    return len(log.samples)
