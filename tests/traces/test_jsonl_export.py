"""JSONL export/import of whole runs: byte-identical payloads, all-or-nothing imports, clear errors."""

from __future__ import annotations

import json

import pytest

from lab.traces import RunRecorder, Score, StoreError, TraceStore
from lab.traces.errors import TraceImportError
from lab.traces.jsonl import export_file, import_file


def _record_runs(store: TraceStore) -> list[str]:
    """Runs whose payloads exercise the encoder: unicode, floats, nesting, nulls, big ints, secrets, spans."""
    a = RunRecorder.start(store, {"task": "q1", "agent": "dera", "model": "smollm2", "seed": 7,
                                  "api_key": "sk-" + "x" * 24})
    with a.span("decider", agent="decider"):
        a.emit("model_call", {"gen_ai.request.model": "smollm2", "gen_ai.usage.input_tokens": 2**53 + 1,
                              "lab.latency_s": 0.1 + 0.2, "text": "naïve café — 東京 \U0001f9ea \"quoted\" \\ \n tab\t",
                              "nested": {"list": [1, 2.5, None, True, {"k": []}], "empty": {}},
                              "tiny": 5e-324, "big": 1.7976931348623157e308, "neg0": -0.0},
               agent="decider")
    a.emit("tool_call", {"gen_ai.tool.name": "shell", "cmd": "echo $TOKEN", "auth": "Bearer abcdefgh12345678"})
    a.score(Score("exact_match", 1.0, provenance="rule", source="rule:exact"))
    a.score(Score("judge", 0.25, provenance="model", source="smollm2", dimension="style", label="B", final=False,
                  details={"prompt": "rate it", "confidence": 0.5}))
    a.error(ValueError("boom"), where="decider")
    a.finish("failed", error="boom")
    b = RunRecorder.start(store, {"task": "q2", "agent": "human:alice"}, is_human=True)
    b.pause("lunch")
    b.resume()
    b.score(Score("expert", None, provenance="human", source="grader-3"))
    b.finish()
    return [a.run_id, b.run_id]


def _run_rows(store: TraceStore, run_id: str) -> dict:
    run = store.get_run(run_id)
    run.pop("owner")
    return run


def test_round_trip_is_byte_identical(tmp_path):
    src = TraceStore(tmp_path / "src.db")
    ids = _record_runs(src)
    out = tmp_path / "runs.jsonl"
    assert export_file(src, ids, out) == 2

    dst = TraceStore(tmp_path / "dst.db")
    assert import_file(dst, out) == ids
    for rid in ids:
        assert dst.raw_events(rid) == src.raw_events(rid)  # every column, attrs text byte for byte
        assert _run_rows(dst, rid) == _run_rows(src, rid)
    cols = ["run_id", "seq", "scorer", "dimension", "value", "label", "provenance", "source", "final"]
    assert dst.scores_frame()[cols].equals(src.scores_frame()[cols])

    again = tmp_path / "again.jsonl"
    export_file(dst, ids, again)
    assert again.read_bytes() == out.read_bytes()
    assert "x" * 24 not in out.read_text() and "abcdefgh12345678" not in out.read_text()


def test_export_lines_are_plain_json(tmp_path, store):
    ids = _record_runs(store)
    out = tmp_path / "runs.jsonl"
    export_file(store, ids[:1], out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines[0]["type"] == "run" and lines[0]["run_id"] == ids[0] and lines[0]["status"] == "failed"
    assert [ln["seq"] for ln in lines[1:]] == list(range(store.count_events(ids[0])))
    assert lines[2]["attrs"]["lab.span.name"] == "decider"


def test_cli_export_and_import(tmp_path, store, lab):
    ids = _record_runs(store)
    store.close()
    out = tmp_path / "cli.jsonl"
    r = lab("runs", "export", *ids, "-o", str(out), "--store", str(store.path))
    assert r.returncode == 0, r.stderr
    r = lab("runs", "import", str(out), "--store", str(tmp_path / "other.db"))
    assert r.returncode == 0, r.stderr
    assert "imported 2 runs" in r.stdout
    other = TraceStore(tmp_path / "other.db")
    assert [x["run_id"] for x in other.list_runs()] == ids
    TraceStore(store.path).create_run({"task": "still running"})
    r = lab("runs", "export", "--store", str(store.path))  # no ids: every finished run, to stdout
    assert r.returncode == 0 and r.stdout.encode() == out.read_bytes()


def _good_lines(store: TraceStore) -> list[str]:
    path = store.path.with_suffix(".jsonl")
    export_file(store, _record_runs(store), path)
    return path.read_text().splitlines()


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda ls: ls[:3] + ["{not json"] + ls[3:], r":4: not JSON"),
    (lambda ls: ls[:2] + [ls[2].replace('"kind":', '"colour":"red","kind":')] + ls[3:], r":3: colour: unknown field"),
    (lambda ls: ls[:2] + [ls[2].replace('"seq":1', '"seq":"1"')] + ls[3:], r":3: seq: a valid integer \(got '1'\)"),
    (lambda ls: ls[:2] + ls[3:], r":3: run \w+ event seq 2, expected 1"),
    (lambda ls: ls[1:], r":1: event of run \w+ does not follow"),
    (lambda ls: [ls[0].replace('"status":"failed"', '"status":"running"')] + ls[1:], r":1: .*only finished runs"),
    (lambda ls: ls + ["[1, 2]"], r":\d+: expected an object"),
])
def test_bad_lines_name_file_and_line_and_import_nothing(tmp_path, store, mutate, message):
    lines = mutate(_good_lines(store))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    dst = TraceStore(tmp_path / "dst.db")
    with pytest.raises(TraceImportError, match="bad.jsonl" + message):
        import_file(dst, bad)
    assert dst.list_runs() == [] and dst.count_events() == 0


def test_existing_run_aborts_the_whole_import(tmp_path, store):
    ids = _record_runs(store)
    out = tmp_path / "runs.jsonl"
    export_file(store, ids, out)
    dst = TraceStore(tmp_path / "dst.db")
    export_file(store, ids[1:], tmp_path / "second.jsonl")
    import_file(dst, tmp_path / "second.jsonl")
    before = dst.count_events()
    with pytest.raises(StoreError, match=f"run {ids[1]} already exists"):
        import_file(dst, out)  # the first run would be new, the second clashes: neither lands
    assert [r["run_id"] for r in dst.list_runs()] == ids[1:] and dst.count_events() == before


def test_missing_file_is_a_clear_error(tmp_path, store, lab):
    with pytest.raises(TraceImportError, match="cannot read .*nope.jsonl: No such file"):
        import_file(store, tmp_path / "nope.jsonl")
    r = lab("runs", "import", str(tmp_path / "nope.jsonl"), "--store", str(store.path))
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "nope.jsonl" in r.stderr and "Traceback" not in r.stderr
