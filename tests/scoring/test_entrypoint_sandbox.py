"""The entrypoint scorer on real sandbox runs: a crash hidden behind ``| tail`` does not pass."""

from __future__ import annotations

import pytest

from lab.scoring import get_scorer
from lab.tasks.scoring import executions_of
from lab.tools import ToolContext
from lab.tools.shell import shell
from lab.traces import RunRecorder

CRASH = "for i in range(50):\n    print('step', i)\nraise ValueError('diverged')\n"
CLEAN = "for i in range(50):\n    print('step', i)\n"


@pytest.fixture(params=["docker", "local"])
def sandbox(request, store):
    from lab.sandbox import SandboxSpec, SandboxUnavailable, open_sandbox

    if request.param == "docker":
        from tests.sandbox.conftest import docker_ready

        reason = docker_ready()
        if reason:
            pytest.skip(f"no Docker engine: {reason}")
    rec = RunRecorder.start(store, {"task": "t"})
    try:
        with open_sandbox(SandboxSpec(backend=request.param), recorder=rec) as sb:
            yield rec, sb
    except SandboxUnavailable as e:
        pytest.skip(str(e))


@pytest.mark.parametrize("command,script,passes", [
    ("python3 train.py 2>&1 | tail -3", CRASH, False),            # the traceback is cut off: exit status says
    ("python3 train.py 2>&1 | tail -3; echo done", CRASH, False),  # ... even when a later command succeeds
    ("python3 train.py 2>&1 | tail -3", CLEAN, True),
    ("python3 train.py", CRASH, False),
])
def test_entrypoint_judges_exit_status_not_visible_tail(store, sandbox, command, script, passes):
    rec, sb = sandbox
    sb.write_file("train.py", script)
    out = shell({"command": command}, ToolContext(sandbox=sb, recorder=rec))
    assert "Traceback" not in out or "| tail" not in command
    assert "__LAB_FAILED__" not in out  # the failure report is in the recorded output, not the observation
    score = get_scorer("entrypoint")(executions_of(store, rec.run_id), "train.py")
    assert score.value == (1.0 if passes else 0.0)
