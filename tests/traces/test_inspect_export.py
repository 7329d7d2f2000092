"""Lab runs out as an Inspect eval log: Inspect's reader reads it back (samples, epochs, scores, usage),
``lab import inspect`` brings the same runs back, and ``inspect view`` serves it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

pytest.importorskip("inspect_ai", reason="needs the inspect extra: pip install 'expertlab[inspect]'")

from inspect_ai.log import read_eval_log  # noqa: E402
from inspect_logs import HUMAN_LOG  # noqa: E402

from lab.agents import ReActAgent  # noqa: E402
from lab.models import ScriptedModel, ToolCall  # noqa: E402
from lab.tools import tool  # noqa: E402
from lab.traces import RunRecorder, Score, TraceStore  # noqa: E402
from lab.traces.importers.inspect import import_inspect  # noqa: E402


@tool
def add(a: float, b: float) -> float:
    """Add two numbers.

    Args:
        a: First.
        b: Second.
    """
    return a + b


def _fill(store: TraceStore) -> None:
    """Two ReAct runs of one task (a scripted model calling a tool), a human expert's run, Inspect runs."""
    for answer in ("5", "6"):
        model = ScriptedModel([ToolCall("", "add", {"a": 2, "b": 3}), ToolCall("", "submit", {"answer": answer})],
                              name="scripted-m")
        run = ReActAgent(model, [add]).start(store, "What is 2+3?", task="sum/1")
        res = run.run()
        store.add_score(res.run_id, Score("exact", float(answer == "5"), item_id="sum/1"))
        store.add_score(res.run_id, Score("expert", 4.0, provenance="human", source="alice", dimension="clarity"))
    rec = RunRecorder.start(store, {"task": "sum/1", "agent": "human", "model": "human:carol", "expert": "carol",
                                    "prompt": "What is 2+3?"}, is_human=True)
    rec.score(Score("exact", 1.0, item_id="sum/1"))
    rec.finish(answer="5")
    store.set_run_fields(rec.run_id, elapsed=420.0)
    import_inspect(store, HUMAN_LOG)


def _summary(store: TraceStore) -> list[tuple]:
    f = store.runs_frame()
    cols = sorted(c for c in f.columns if c.startswith("score."))
    return sorted((r["task"], r["agent"], r["model"], bool(r["is_human"]), round(r["elapsed"] or 0, 3),
                   *[None if r[c] != r[c] else r[c] for c in cols]) for _, r in f.iterrows())


def test_round_trip(store, tmp_path, lab):
    _fill(store)
    runs = store.list_runs()
    out = tmp_path / "lab.eval"
    res = lab("runs", "export", "--format", "inspect", "-o", str(out), "--store", str(store.path))
    assert res.returncode == 0, res.stderr
    log = read_eval_log(str(out))
    assert log.status == "success" and len(log.samples) == len(runs) == 9
    by_run = {s.metadata["run_id"]: s for s in log.samples}
    react = [r for r in runs if r["agent"] == "react"]
    assert [by_run[r["run_id"]].epoch for r in react] == [1, 2]  # runs of one task are its epochs
    for r in react:
        s = by_run[r["run_id"]]
        assert s.id == "sum/1" and s.scores["exact"].value == float(r is react[0])
        assert s.scores["expert.clarity"].value == 4.0 and s.scores["expert.clarity"].metadata["source"] == "alice"
        calls = [e for e in store.events(r["run_id"], kinds=["model_call"])]
        model_events = [e for e in s.events if e.event == "model"]
        assert len(model_events) == len(calls) == 2
        assert s.model_usage["scripted-m"].input_tokens == sum(c.attrs["gen_ai.usage.input_tokens"] for c in calls)
        tools = [e for e in s.events if e.event == "tool"]
        assert [t.function for t in tools] == ["add", "submit"] and tools[0].result == "5.0"
        assert s.output.completion == ("5" if r is react[0] else "6")
    human = by_run[next(r["run_id"] for r in runs if r["model"] == "human:carol")]
    assert human.metadata["is_human"] and human.metadata["expert"] == "carol" and human.working_time == 420.0
    mean = next(sc for sc in log.results.scores if sc.name == "exact").metrics["mean"].value
    assert mean == pytest.approx(2 / 3)

    back = TraceStore(tmp_path / "back.db")
    assert len(import_inspect(back, out)) == 9
    assert _summary(back) == _summary(store)
    back.close()


def test_json_and_bad_names(store, tmp_path, lab):
    _fill(store)
    res = lab("runs", "export", "--format", "inspect", "-o", str(tmp_path / "lab.json"), "--store", str(store.path))
    assert res.returncode == 0 and len(read_eval_log(str(tmp_path / "lab.json")).samples) == 9
    res = lab("runs", "export", "--format", "inspect", "-o", str(tmp_path / "lab.txt"), "--store", str(store.path))
    assert res.returncode == 2 and "lab.txt: an Inspect log is named .eval or .json" in res.stderr
    assert not (tmp_path / "lab.txt").exists()
    res = lab("runs", "export", "--format", "inspect", "--store", str(store.path))
    assert res.returncode != 0 and "needs -o" in res.stderr + res.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_inspect_view_serves_the_export(store, tmp_path, lab):
    _fill(store)
    logs = tmp_path / "logs"
    logs.mkdir()
    assert lab("runs", "export", "--format", "inspect", "-o", str(logs / "lab.eval"),
               "--store", str(store.path)).returncode == 0
    port = _free_port()
    exe = [sys.executable, "-c", "from inspect_ai._cli.main import main; main()"]
    proc = subprocess.Popen([*exe, "view", "--log-dir", str(logs), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/api"
        for _ in range(120):
            try:
                files = json.load(urllib.request.urlopen(f"{base}/log-files", timeout=5))["files"]
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("inspect view did not answer")
        (entry,) = files
        data = json.load(urllib.request.urlopen(f"{base}/logs/{urllib.parse.quote(entry['name'], safe='')}",
                                                timeout=30))
        assert data["status"] == "success" and len(data["samples"]) == 9 and entry["task"] == "expertlab"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
