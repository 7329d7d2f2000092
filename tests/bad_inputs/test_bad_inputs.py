"""The bad-input corpus: each malformed file, given to the real `lab` command, gets one clear error line.

Every case runs the CLI's entry point (``lab.cli.main.main``) on one file of a kind directory and checks: a non-zero
exit, no traceback, exactly one error line that names the file, holds the case's expected text and, where the case
says, the line; and a trace store that still opens with exactly what it held before (runs, events, scores).

Each kind directory has an ``expected.yaml``: ``NAME: {match: TEXT, line: N, env: {VAR: VALUE}}``. This module covers
the kinds below; other kinds of the corpus have their own test modules.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from lab.traces import RunRecorder, Score, TraceStore
from lab.traces.importers.metr import import_metr

HERE = Path(__file__).resolve().parent
COMMANDS = {
    "tasks": ["tasks", "validate"],
    "super": ["import", "super"],
    "metr": ["import", "metr"],
    "grades": ["grades", "import"],
    "runs": ["runs", "import"],
}
STORE_FREE = {"tasks"}


def _cases() -> list:
    out = []
    for kind in COMMANDS:
        for name, spec in yaml.safe_load((HERE / kind / "expected.yaml").read_text()).items():
            out.append(pytest.param(kind, name, spec, id=f"{kind}/{name}"))
    return out


CASES = _cases()


@pytest.fixture(scope="module")
def template_store(tmp_path_factory) -> Path:
    """A store with runs recorded and imported through the real code paths (closed, so one file)."""
    path = tmp_path_factory.mktemp("template") / "traces.db"
    with TraceStore(path) as st:
        rec = RunRecorder.start(st, {"task": "kept", "agent": "dera", "model": "smollm2"}, run_id="kept-run")
        with rec.span("decider", agent="decider"):
            rec.emit("agent_message", {"content": "draft answer"})
        rec.score(Score("exact_match", 1.0))
        rec.finish()
        import_metr(st, HERE.parent / "data" / "metr_runs.jsonl")
    return path


def _snapshot(path: Path) -> tuple:
    with TraceStore(path) as st:
        return (sorted((r["run_id"], r["status"]) for r in st.list_runs()), st.count_events(),
                st.query("SELECT COUNT(*) FROM scores")[0][0])


def _lab(*args: str) -> tuple[int, str, str]:
    from lab.cli.main import main

    out, err, code, argv = io.StringIO(), io.StringIO(), 0, sys.argv
    sys.argv = ["lab", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def test_corpus_is_complete():
    """At least 50 malformed files across these kinds, and every file or folder is a listed case."""
    files = 0
    for kind in COMMANDS:
        listed = set(yaml.safe_load((HERE / kind / "expected.yaml").read_text()))
        present = {p.name for p in (HERE / kind).iterdir() if p.name != "expected.yaml"}
        assert present == listed, (kind, present ^ listed)
        files += sum(1 for p in (HERE / kind).rglob("*") if p.is_file() and p.name != "expected.yaml")
    assert files >= 50, files


@pytest.mark.parametrize("kind, name, spec", CASES)
def test_bad_input_gets_one_clear_line(kind, name, spec, template_store, tmp_path, monkeypatch):
    for var, value in (spec.get("env") or {}).items():
        monkeypatch.setenv(var, str(value))
    path = HERE / kind / name
    args = [*COMMANDS[kind], str(path)]
    store = tmp_path / "traces.db"
    if kind not in STORE_FREE:
        shutil.copyfile(template_store, store)
        before = _snapshot(store)
        args += ["--store", str(store)]
    code, out, err = _lab(*args)
    assert code != 0, out + err
    assert "Traceback" not in out + err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    line = lines[0]
    assert str(path) in line, line
    assert spec["match"] in line, line
    if "line" in spec:
        assert f":{spec['line']}: " in line, line
    if kind not in STORE_FREE:
        assert _snapshot(store) == before  # nothing half-written, and the store still opens
