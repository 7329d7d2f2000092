"""JupyterLab's terminal in `lab human --jupyter` runs inside the task's sandbox: over the terminal websocket
(what the browser's xterm.js speaks), commands run as the sandbox's user with no capabilities, write into the
sandbox's workdir, and are recorded as human_action events (typed lines and what the terminal showed)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from lab.traces import TraceStore

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(tmp_path, kernel_image):
    """`lab human ... --jupyter` in its own process; yields (base url, token, store path, process)."""
    db = tmp_path / "traces.db"
    proc = subprocess.Popen([sys.executable, "-m", "lab.cli.main", "human", "repo-setup/tinyclf-pinned-version",
                             "--expert", "ana", "--jupyter", "--store", str(db)], cwd=REPO,
                            env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, m = [], None
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
    try:
        yield m.group(1), m.group(2), db, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


async def _terminal(base: str, token: str, commands: list[str], until: str) -> str:
    from tornado.websocket import websocket_connect

    req = urllib.request.Request(f"{base}/api/terminals?token={token}", method="POST", data=b"")
    name = json.load(urllib.request.urlopen(req, timeout=30))["name"]
    ws = await websocket_connect(f"{base.replace('http', 'ws')}/terminals/websocket/{name}?token={token}")
    for c in commands:
        await ws.write_message(json.dumps(["stdin", c + "\r"]))
    shown = ""
    end = time.monotonic() + 60
    while until not in shown and time.monotonic() < end:
        try:
            msg = await asyncio.wait_for(ws.read_message(), max(0.1, end - time.monotonic()))
        except asyncio.TimeoutError:
            break
        if msg is None:
            break
        kind, *rest = json.loads(msg)
        if kind == "stdout":
            shown += rest[0]
    ws.close()
    return shown


def test_terminal_runs_in_the_sandbox_and_is_recorded(server):
    base, token, db, proc = server
    shown = asyncio.run(_terminal(base, token, [
        "echo uid=$(id -u) owner=$(stat -c %u /work)",
        "grep -E 'Cap(Eff|Bnd)' /proc/self/status",
        "touch /work/x-terminal && echo made-$((6*7))",
    ], "made-42"))
    if "made-42" not in shown:
        os.killpg(proc.pid, signal.SIGTERM)
        pytest.fail(f"the terminal showed {shown[-2000:]!r}; the server said:\n{proc.stdout.read()[-3000:]}")
    uid, owner = re.search(r"uid=(\d+) owner=(\d+)", shown).groups()
    assert uid == owner and uid != "0"  # the sandbox's user, who owns the workdir
    assert re.search(r"CapEff:\s+0+\b", shown) and re.search(r"CapBnd:\s+0+\b", shown)
    # the file is in the sandbox's workdir (what JupyterLab's file browser serves), not on this host's /work
    with urllib.request.urlopen(f"{base}/api/contents/x-terminal?token={token}&content=0", timeout=30) as r:
        assert r.status == 200
    assert not Path("/work/x-terminal").exists()
    time.sleep(2)  # the session records what the terminal's relay logged within a fraction of a second
    store = TraceStore(db)
    actions = [e.attrs for e in store.events(store.list_runs()[0]["run_id"], kinds=["human_action"])]
    typed = [a["lab.terminal.line"] for a in actions if a["lab.action"] == "terminal_input"]
    assert typed[:3] == ["echo uid=$(id -u) owner=$(stat -c %u /work)",
                         "grep -E 'Cap(Eff|Bnd)' /proc/self/status", "touch /work/x-terminal && echo made-$((6*7))"]
    output = "".join(a["content"] for a in actions if a["lab.action"] == "terminal_output")
    assert f"uid={uid} owner={owner}" in output and "made-42" in output
    store.close()
