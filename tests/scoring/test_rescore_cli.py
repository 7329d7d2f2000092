"""`lab rescore STORE --scorer NAME [--runs ...]`: re-score stored runs from the command line."""

from __future__ import annotations

from lab.traces import RunRecorder
from tests.traces.conftest import run_lab


def finished(store, task, answer):
    rec = RunRecorder.start(store, {"task": task, "agent": "react"})
    rec.finish(answer=answer)
    return rec.run_id


def test_rescore_cli_scores_against_the_tasks_gold_answer(store):
    right = finished(store, "chem-tools/mw-aspirin", "180.16")
    wrong = finished(store, "chem-tools/mw-aspirin", "46.07")
    other = finished(store, "chem-tools/mw-aspirin", "180.2")
    r = run_lab("rescore", str(store.path), "--scorer", "numeric", "--arg", "abs_tol=0.01",
                "--runs", right, "--runs", wrong)
    assert r.returncode == 0, r.stderr
    assert "numeric: 2 scores, mean 0.5" in r.stdout
    rows = dict(store.query("SELECT run_id, value FROM scores WHERE scorer='numeric'"))
    assert rows == {right: 1.0, wrong: 0.0}  # `other` was not named
    r = run_lab("rescore", str(store.path), "--scorer", "regex", "--arg", "pattern=^180")
    assert r.returncode == 0 and "scored 3 runs" in r.stdout
    assert store.query("SELECT value FROM scores WHERE scorer='regex' AND run_id=?", (other,)) == [(1.0,)]


def test_rescore_cli_bad_input_is_one_line(store):
    finished(store, "t", "x")
    r = run_lab("rescore", str(store.path), "--scorer", "no_such_scorer")
    assert r.returncode != 0 and "no_such_scorer" in r.stderr and "Traceback" not in r.stderr
    r = run_lab("rescore", str(store.path), "--scorer", "regex", "--arg", "pattern")
    assert r.returncode != 0 and "KEY=VALUE" in r.stderr
