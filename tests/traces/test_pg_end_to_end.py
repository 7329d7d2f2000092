"""Real `lab run` drivers writing one PostgreSQL store at once, then read by the CLI and the dashboard."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lab.traces.backend import open_trace_store

REPO = Path(__file__).resolve().parents[2]


def _lab(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lab.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def test_two_lab_run_drivers_into_one_postgresql_store(tmp_path, pg_url):
    script = tmp_path / "script.yaml"
    script.write_text(json.dumps({"cycle": True, "replies": [
        {"json": {"answer": "Ceftriaxone", "explanation": "x"}},
        {"json": {"message": "fine", "done": True}},
        {"json": {"message": "ok", "answer": "Ceftriaxone", "final": True}}]}))
    exps = []
    for k in range(2):
        exp = tmp_path / f"exp{k}.yaml"
        exp.write_text(f"name: team{k}\ntasks: [medqa-open/dev-0001]\nloops: [dera]\nseeds: [0, 1]\n"
                       f"models: ['scripted:{script}']\njudge_fallback: false\n")
        exps.append(exp)
    # One driver names the store with --store, the other through $LAB_STORE.
    drivers = [_lab("run", str(exps[0]), "--store", pg_url, "--no-progress"),
               _lab("run", str(exps[1]), "--no-progress", env={"LAB_STORE": pg_url})]
    outs = [d.communicate(timeout=300) for d in drivers]
    assert all(d.returncode == 0 for d in drivers), [e for _, e in outs]
    assert all("done=2" in o for o, _ in outs), outs
    with open_trace_store(pg_url) as s:
        runs = s.list_runs()
        assert len(runs) == 4 and {r["status"] for r in runs} == {"done"}
        assert len({r["batch_id"] for r in runs}) == 2
        for r in runs:
            seqs = [e.seq for e in s.events(r["run_id"])]
            assert seqs == list(range(len(seqs))) and len(seqs) > 5
            assert s.checkpointer.get_tuple({"configurable": {"thread_id": r["run_id"], "checkpoint_ns": ""}})
        assert s.runs_frame()["score.normalized_match"].tolist() == [1.0] * 4
    again = _lab("run", str(exps[0]), "--store", pg_url, "--no-progress")
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0 and "skipped=2" in out, err

    from widgets.dashboard import Dashboard

    with open_trace_store(pg_url, readonly=True) as s:
        board = Dashboard(s)
        assert board.panel() is not None
