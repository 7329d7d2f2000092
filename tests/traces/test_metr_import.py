"""METR-style run tables: one finished run per row with its final score; humans marked; bad rows named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lab.traces.errors import StoreError, TraceImportError
from lab.traces.frames import final_score_means
from lab.traces.importers.metr import import_metr

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "metr_runs.jsonl"


def _rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def test_rows_become_runs_with_final_scores(store):
    ids = import_metr(store, FIXTURE)
    rows = _rows()
    assert ids == [r["run_id"] for r in rows]
    for row in rows:
        run = store.get_run(row["run_id"])
        assert run["is_human"] == (row["alias"] == "human")
        assert (run["task"], run["agent"], run["model"], run["status"]) == (
            row["task_id"], row["alias"], row["model"], "done")
        assert run["config"]["task_family"] == row["task_family"] and run["config"]["note"] == row["note"]
        if run["is_human"] and row["human_minutes"] is not None:
            assert run["elapsed"] == row["human_minutes"] * 60
        elif isinstance(row["started_at"], int):
            assert run["elapsed"] == (row["completed_at"] - row["started_at"]) / 1000
            assert run["created_at"] == row["started_at"] / 1000
    assert store.get_run("syn-0006")["elapsed"] == 8 * 3600  # ISO 8601 times, no human_minutes
    frame = store.runs_frame().set_index("run_id")
    for row in rows:
        got = frame.loc[row["run_id"], "score.score"]
        assert (got != got) if row["score"] is None else got == row["score"]
    sf = store.scores_frame()
    assert set(sf["source"]) == {"metr"} and set(sf["provenance"]) == {"rule"}


def test_human_and_ai_means(store):
    import_metr(store, FIXTURE)
    means = final_score_means(store, by="is_human", scorers=["score"], missing=None)
    rows = _rows()
    for human in (True, False):
        vals = [r["score"] for r in rows if (r["alias"] == "human") == human and r["score"] is not None]
        assert means.loc[human, "score"] == pytest.approx(sum(vals) / len(vals))
    assert means.loc[True, "runs"] == 3 and means.loc[False, "runs"] == 6


@pytest.mark.parametrize(("line", "message"), [
    ('{"run_id": "x1", "task_id": "t", "score": "high"}',
     r":3: score: a valid integer or a valid number \(got 'high'\)"),
    ('{"run_id": "x1", "score": 0.5}', r":3: task_id: field required"),
    ('{"run_id": "x1", "task_id": "t", "score": 0.5, "started_at": "yesterday"}', r":3: started_at: .*ISO 8601"),
    ('{"run_id": "syn-0001", "task_id": "t", "score": 0.5}', r":3: run_id syn-0001 repeats line 1"),
    ("{'run_id': 'x1'}", r":3: not JSON"),
    ("[]", r":3: expected a JSON object"),
])
def test_bad_row_names_file_and_line_and_imports_nothing(tmp_path, store, line, message):
    good = FIXTURE.read_text().splitlines()
    bad = tmp_path / "runs.jsonl"
    bad.write_text("\n".join([good[0], good[1], line, good[2]]) + "\n")
    with pytest.raises(TraceImportError, match="runs.jsonl" + message):
        import_metr(store, bad)
    assert store.list_runs() == [] and store.count_events() == 0


def test_clash_with_stored_run_imports_nothing(tmp_path, store):
    one = tmp_path / "one.jsonl"
    one.write_text(FIXTURE.read_text().splitlines()[4] + "\n")
    import_metr(store, one)
    with pytest.raises(StoreError, match="syn-0005 already exists"):
        import_metr(store, FIXTURE)
    assert [r["run_id"] for r in store.list_runs()] == ["syn-0005"]


def test_cli_import_metr(tmp_path, lab):
    db = tmp_path / "m.db"
    r = lab("import", "metr", str(FIXTURE), "--store", str(db))
    assert r.returncode == 0 and "imported 9 METR runs" in r.stdout
    r = lab("runs", "list", "--json", "--store", str(db))
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert {x["run_id"]: x["human"] for x in rows} == {x["run_id"]: x["alias"] == "human" for x in _rows()}
    r = lab("import", "metr", str(tmp_path / "missing.jsonl"), "--store", str(db))
    missing = tmp_path / "missing.jsonl"
    assert r.returncode == 2 and r.stderr == f"error: cannot read {missing}: No such file or directory\n"
