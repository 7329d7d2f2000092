"""``lab runs list --json`` (the shape scripts rely on) and ``lab runs show``."""

from __future__ import annotations

import json

from lab.traces import RunRecorder, Score


def _runs(store):
    ai = RunRecorder.start(store, {"task": "medqa-3", "agent": "dera", "model": "smollm2", "seed": 1})
    ai.score(Score("judge", 0.2, provenance="model", source="smollm2", final=False))
    ai.score(Score("judge", 0.6, provenance="model", source="smollm2"))
    ai.score(Score("rubric", 4.0, provenance="human", source="expert-2", dimension="clarity"))
    ai.score(Score("exact_match", None))
    ai.finish()
    human = RunRecorder.start(store, {"task": "medqa-3", "agent": "human:alice"}, is_human=True)
    human.score(Score("judge", 0.9, provenance="model", source="smollm2"))
    human.finish("cancelled")
    live = store.create_run({"task": "medqa-4", "agent": "react", "model": "smollm2"})
    return ai, human, live


def test_runs_list_json_shape(store, lab):
    ai, human, live = _runs(store)
    r = lab("runs", "list", "--json", "--store", str(store.path))
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["run_id"] for x in rows] == [ai.run_id, human.run_id, live]
    assert all(list(x) == ["run_id", "task", "agent", "model", "status", "human", "elapsed", "scores"] for x in rows)
    a, h, lv = rows
    assert (a["task"], a["agent"], a["model"], a["status"], a["human"]) == ("medqa-3", "dera", "smollm2", "done", False)
    assert a["elapsed"] == store.get_run(ai.run_id)["elapsed"] and a["elapsed"] > 0
    assert a["scores"] == {"judge": 0.6, "rubric.clarity": 4.0, "exact_match": None}  # final scores only
    assert (h["agent"], h["human"], h["status"], h["scores"]) == ("human:alice", True, "cancelled", {"judge": 0.9})
    assert (lv["status"], lv["elapsed"], lv["scores"]) == ("running", None, {})
    r = lab("runs", "list", "--json", "--status", "cancelled", "--store", str(store.path))
    assert [json.loads(line)["run_id"] for line in r.stdout.splitlines()] == [human.run_id]


def test_runs_list_table_and_show(store, lab):
    ai, human, _ = _runs(store)
    r = lab("runs", "list", "--store", str(store.path))
    lines = r.stdout.splitlines()
    assert len(lines) == 3 and lines[1].split()[:5] == [human.run_id, "medqa-3", "human:alice", "human", "cancelled"]
    assert "judge=0.6" in lines[0] and "exact_match=-" in lines[0]
    r = lab("runs", "show", ai.run_id[:6], "--store", str(store.path))
    assert r.returncode == 0, r.stderr
    head, _, events = r.stdout.partition("\n}\n")
    run = json.loads(head + "\n}")
    assert run["run_id"] == ai.run_id and run["config"]["seed"] == 1
    kinds = [line.split()[2] for line in events.splitlines()]
    assert kinds == [e.kind for e in store.events(ai.run_id)]
    r = lab("runs", "show", "zzz", "--store", str(store.path))
    assert r.returncode == 2 and r.stderr.startswith("error: no run 'zzz'")
