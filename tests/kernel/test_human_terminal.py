"""JupyterLab's terminal in `lab human --jupyter` runs inside the task's sandbox: over the terminal websocket
(what the browser's xterm.js speaks), commands run as the sandbox's user with no capabilities, write into the
sandbox's workdir, and are recorded as human_action events (typed lines and what the terminal showed)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from lab.traces import TraceStore

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def server(lab_human_jupyter, kernel_image):
    """`lab human ... --jupyter` in its own process; yields (base url, token, store path, process)."""
    proc, url, db, _ = lab_human_jupyter()
    base, _, query = url.partition("/lab")
    yield base, query.rpartition("token=")[2], db, proc


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
