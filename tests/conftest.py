"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("LAB_SHARED_DATA", REPO.parent / "shared" / "data"))
FULL = os.environ.get("LAB_FULL") == "1"


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.slow`` tests run only with ``LAB_FULL=1`` (``make test-full``)."""
    if FULL:
        return
    skip = pytest.mark.skip(reason="slow: set LAB_FULL=1 (make test-full) to run")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def store(tmp_path):
    """A fresh trace store in a temporary directory."""
    from lab.traces import TraceStore

    st = TraceStore(tmp_path / "traces.db")
    yield st
    st.close()


@pytest.fixture
def shared_data() -> Path:
    """The shared real data directory; skips the test with a reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set LAB_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture
def lab_human_jupyter(tmp_path):
    """Start `lab human repo-setup/tinyclf-pinned-version --expert ana --jupyter` in its own process group, once
    JupyterLab answers; yields a function returning (process, JupyterLab URL with token, store path, lines printed).
    The process group is stopped afterwards."""
    import re
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    repo = Path(__file__).resolve().parents[1]
    procs: list[subprocess.Popen] = []

    def start():
        db = tmp_path / "traces.db"
        proc = subprocess.Popen([sys.executable, "-m", "lab.cli.main", "human", "repo-setup/tinyclf-pinned-version",
                                 "--expert", "ana", "--jupyter", "--store", str(db)], cwd=repo,
                                env={**os.environ, "PYTHONPATH": str(repo)}, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        procs.append(proc)
        lines: list[str] = []
        m = None
        end = time.monotonic() + 180
        while m is None and time.monotonic() < end:
            line = proc.stdout.readline()
            if not line:
                pytest.fail("lab human --jupyter exited early:\n" + "".join(lines[-30:]))
            lines.append(line)
            m = re.search(r"JupyterLab: (http://127\.0\.0\.1:\d+)/\S+\?token=(\S+)", line)
        assert m, "no JupyterLab address printed:\n" + "".join(lines[-30:])
        until = time.monotonic() + 60  # the address is printed as the server starts: wait until it answers
        while True:
            try:
                urllib.request.urlopen(f"{m.group(1)}/api/status?token={m.group(2)}", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > until or proc.poll() is not None:
                    raise
                time.sleep(0.5)
        return proc, m.group(0).removeprefix("JupyterLab: "), db, lines

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
