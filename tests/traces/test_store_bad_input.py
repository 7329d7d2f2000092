"""Bad input: a read-only disk, corrupt databases, wrong options, bad paths. Clear errors, nothing damaged."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lab.traces import Event, RunRecorder, StoreError, TraceStore

REPO = Path(__file__).resolve().parents[2]


def _filled(path: Path) -> tuple[str, int]:
    with TraceStore(path) as st:
        rec = RunRecorder.start(st, {"task": "kept"})
        st.append_many([Event(rec.run_id, "agent_message", {"i": i, "pad": "y" * 300}) for i in range(2000)])
        rec.finish()
        return rec.run_id, st.count_events(rec.run_id)


READ_ONLY_CHECK = """
    import subprocess, sys
    from lab.traces import StoreError, TraceStore
    db, run_id, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    try:
        TraceStore(db)
        sys.exit("opened for writing on a read-only disk")
    except StoreError as e:
        assert "is read-only" in str(e) and db in str(e), e
    st = TraceStore(db, readonly=True)
    assert st.count_events(run_id) == n and st.get_run(run_id)["status"] == "done"
    try:
        st.create_run({})
        sys.exit("wrote through a read-only store")
    except StoreError as e:
        assert "read-only" in str(e), e
    lab = [sys.executable, "-m", "lab.cli.main"]
    out = subprocess.run(lab + ["runs", "list", "--json", "--store", db], capture_output=True, text=True)
    assert out.returncode == 0 and run_id in out.stdout, out.stderr
    out = subprocess.run(lab + ["import", "metr", sys.argv[4], "--store", db], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.count(chr(10)) == 1 and "is read-only" in out.stderr, out.stderr
    print("read-only checks passed")
"""


def test_store_on_a_read_only_disk(tmp_path):
    """A real read-only mount (a private mount namespace, so it works as root and leaks nowhere)."""
    if not shutil.which("unshare"):
        pytest.skip("unshare(1) not available to make a read-only mount")
    disk = tmp_path / "disk"
    disk.mkdir()
    run_id, n = _filled(disk / "traces.db")
    before = {p.name: p.read_bytes() for p in disk.iterdir()}
    script = tmp_path / "check.py"
    script.write_text(textwrap.dedent(READ_ONLY_CHECK))
    probe = subprocess.run(["unshare", "--mount", "sh", "-c", f"mount --bind {disk} {disk} && "
                            f"mount -o remount,bind,ro {disk} && ! touch {disk}/probe"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a read-only mount here: {probe.stderr.decode().strip() or 'writes still succeed'}")
    fixture = REPO / "tests" / "data" / "metr_runs.jsonl"
    r = subprocess.run(
        ["unshare", "--mount", "sh", "-c", f"mount --bind {disk} {disk} && mount -o remount,bind,ro {disk} && "
         f"exec {sys.executable} {script} {disk / 'traces.db'} {run_id} {n} {fixture}"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "read-only checks passed" in r.stdout
    assert {p.name: p.read_bytes() for p in disk.iterdir()} == before


@pytest.mark.parametrize("damage", ["garbage", "truncated", "pages"])
def test_corrupt_database_is_named_and_left_untouched(tmp_path, damage, lab):
    db = tmp_path / "traces.db"
    _filled(db)
    size = db.stat().st_size
    with open(db, "r+b") as f:
        if damage == "garbage":
            f.write(b"this is not sqlite" * 10)
        elif damage == "truncated":
            f.truncate(size // 2)
        else:
            f.seek(8192)
            f.write(os.urandom(4096 * 20))
    before = db.read_bytes()
    for readonly in (False, True):
        with pytest.raises(StoreError, match=f"{db} is not a readable trace store"):
            TraceStore(db, readonly=readonly)
    r = lab("runs", "list", "--store", str(db))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "not a readable trace store" in r.stderr
    assert db.read_bytes() == before


def test_wrong_options_are_named(store):
    with pytest.raises(StoreError, match="durability must be 'normal' or 'full', not 'fast'"):
        TraceStore(store.path, durability="fast")
    run_id = store.create_run({"task": "t"})
    with pytest.raises(StoreError, match=r"cannot set run fields \['colour'\]"):
        store.set_run_fields(run_id, colour="red")
    with pytest.raises(StoreError, match="unknown run status 'paused'"):
        store.create_run({}, status="paused")
    with pytest.raises(StoreError, match="no run nope in"):
        store.finish_run("nope", "done")
    with pytest.raises(StoreError, match="no run 'nope'"):
        store.get_run("nope")
    with pytest.raises(StoreError, match="opened read-only"):
        TraceStore(store.path, readonly=True).append(Event(run_id, "agent_message", {}))
    with pytest.raises(StoreError, match="no trace store at"):
        TraceStore(store.path.with_name("absent.db"), readonly=True)


def test_cli_bad_paths_print_one_line(tmp_path, lab, lab_process):
    r = lab("runs", "list", "--store", str(tmp_path / "absent.db"))
    assert (r.returncode, r.stdout) == (2, "")
    absent = tmp_path / "absent.db"
    assert r.stderr == f"error: no trace store at {absent} (pass --store, or record or import runs first)\n"
    r = lab("import", "metr", str(REPO / "tests/data/metr_runs.jsonl"), "--store", "/proc/self/nope/traces.db")
    assert r.returncode == 2 and r.stderr.startswith("error: cannot create store directory /proc/self/nope")
    assert r.stderr.count("\n") == 1
    r = lab_process("runs", "list", "--store", str(tmp_path / "absent.db"))  # a real process, too
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    r = lab_process("--debug", "runs", "list", "--store", str(tmp_path / "absent.db"))
    assert r.returncode != 0 and "Traceback" in r.stderr and "StoreError" in r.stderr
