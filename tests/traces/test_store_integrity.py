"""The operator's records: a truncated store, a full disk, and exports that must not clobber anything."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from lab.traces import Event, RunRecorder, Score, StoreError, TraceStore, jsonl
from lab.traces.checkpoints import checkpoint_path, checkpointer_for


def _recorded(path: Path, n_events: int = 3, pad: int = 10) -> str:
    with TraceStore(path) as st:
        rec = RunRecorder.start(st, {"task": "kept", "agent": "dera"})
        for i in range(n_events):
            rec.emit("agent_message", {"i": i, "pad": "y" * pad})
        rec.score(Score("exact_match", 1.0))
        rec.finish()
        return rec.run_id


def _one_error_line(r) -> str:
    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_truncated_store_is_reported_not_reset(tmp_path, lab):
    db = tmp_path / "traces.db"
    _recorded(db)
    os.truncate(db, 0)
    for args in (["runs", "list"], ["runs", "list", "--json"], ["runs", "export"]):
        line = _one_error_line(lab(*args, "--store", str(db)))
        assert str(db) in line and "empty" in line and "0 bytes" in line, line
    metr = tmp_path / "runs.jsonl"
    metr.write_text('{"run_id": "r1", "task_id": "t", "score": 0.5}\n')
    line = _one_error_line(lab("import", "metr", str(metr), "--store", str(db)))  # a writer, too
    assert str(db) in line and "empty" in line
    assert db.stat().st_size == 0  # left as found, for the operator to restore
    with pytest.raises(StoreError, match="empty"):
        TraceStore(db)


def test_new_stores_appear_whole(tmp_path):
    """A store file is never seen empty while it is being created (so an empty one is always damage)."""
    db = tmp_path / "new" / "traces.db"
    st = TraceStore(db)
    assert db.stat().st_size > 0 and st.list_runs() == []
    st.close()
    assert not [p for p in db.parent.iterdir() if p.name.startswith(".")]  # no temporary left behind


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MiB tmpfs (as root; the test is skipped where mounting is impossible)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def test_full_disk_says_so(tmp_path, tiny_disk, lab):
    db = tiny_disk / "traces.db"
    run_id = _recorded(db)
    big = tmp_path / "big.db"  # a run too large for what is left of the disk, exported for import
    with TraceStore(big) as src:
        rec = RunRecorder.start(src, {"task": "big"})
        src.append_many([Event(rec.run_id, "agent_message", {"pad": uuid.uuid4().hex * 40}) for _ in range(800)])
        rec.finish()
        jsonl.export_file(src, [rec.run_id], tmp_path / "big.jsonl")
    filler = _fill(tiny_disk)
    try:
        line = _one_error_line(lab("runs", "import", str(tmp_path / "big.jsonl"), "--store", str(db)))
        assert "disk is full" in line and str(db) in line and "cannot rollback" not in line, line
        with pytest.raises(StoreError, match="disk is full") as e:
            with TraceStore(db) as st:
                rec = RunRecorder.start(st, {"task": "t"})
                for _ in range(400):
                    rec.emit("agent_message", {"pad": uuid.uuid4().hex * 40})
        assert "cannot rollback" not in str(e.value)
    finally:
        filler.unlink()
    with TraceStore(db) as st:  # the store still opens and holds what was recorded before
        assert run_id in [r["run_id"] for r in st.list_runs()]
        assert st.count_events(run_id) == 6
        assert not any(r["task"] == "big" for r in st.list_runs())


def test_export_never_overwrites_without_force(tmp_path, lab):
    db = tmp_path / "traces.db"
    run_id = _recorded(db)
    before = db.read_bytes()
    with TraceStore(db):  # the store open (its -wal beside it), with its LangGraph checkpoints
        checkpoints = checkpoint_path(db)
        checkpointer_for(db)
        targets = [db, checkpoints, Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(t.exists() for t in targets)
        for target in targets:
            line = _one_error_line(lab("runs", "export", "--store", str(db), "-o", str(target), "--force"))
            assert str(target) in line and "never overwritten" in line, line
    assert db.read_bytes() == before
    line = _one_error_line(lab("runs", "export", "--store", str(db), "-o", str(db)))
    assert db.read_bytes() == before and "never overwritten" in line

    notes = tmp_path / "notes.jsonl"
    notes.write_text("mine\n")
    line = _one_error_line(lab("runs", "export", "--store", str(db), "-o", str(notes)))
    assert str(notes) in line and "--force" in line and notes.read_text() == "mine\n"
    r = lab("runs", "export", "--store", str(db), "-o", str(notes), "--force")
    assert r.returncode == 0, r.stderr
    assert notes.read_text().startswith('{"type":"run"') and run_id in notes.read_text()

    fresh = tmp_path / "out" / "fresh.jsonl"
    fresh.parent.mkdir()
    line = _one_error_line(lab("runs", "export", "nosuchrun", "--store", str(db), "-o", str(fresh)))
    assert "nosuchrun" in line and list(fresh.parent.iterdir()) == []  # nothing half-written, no temporary
    assert lab("runs", "export", "--store", str(db), "-o", str(fresh)).returncode == 0
    assert fresh.read_text() == notes.read_text()
