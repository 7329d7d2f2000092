"""A human Jupyter session whose lab process is killed (``kill -9``) is marked interrupted on the next store
open, and ``resume`` continues it: same run, working time going on from the recorded one, a fresh sandbox
with the workdir restored from the session's last snapshot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from lab.agents.human import HumanSession
from lab.agents.human_jupyter import JupyterHumanSession
from lab.tasks import get_task
from lab.tasks.environment import open_task_sandbox
from lab.traces import TraceStore

pytestmark = pytest.mark.docker

TASK = "repo-setup/tinyclf-pinned-version"

_SESSION = textwrap.dedent("""
    import sys, time
    from lab.agents.human_jupyter import JupyterHumanSession
    from lab.tasks import get_task
    from lab.tasks.environment import open_task_sandbox
    from lab.traces import TraceStore

    task = get_task(sys.argv[2])
    s = JupyterHumanSession(TraceStore(sys.argv[1]), task, expert="ana",
                            sandbox=lambda rec: open_task_sandbox(task, rec))
    s.run_cells(["open('notes.txt', 'w').write('before the crash')", "import time; time.sleep(1.5)"])
    print(s.run_id, s.sandbox.container.id, flush=True)
    time.sleep(600)
""")


def test_killed_session_is_interrupted_and_resumes_with_its_files(tmp_path, kernel_image):
    db = tmp_path / "traces.db"
    proc = subprocess.Popen([sys.executable, "-c", _SESSION, str(db), TASK], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.getcwd()})
    old_container = None
    try:
        line = proc.stdout.readline()
        assert line, "the session process printed nothing"
        run_id, old_container = line.split()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        store = TraceStore(db)  # opening it finds the writer dead
        run = store.get_run(run_id)
        assert run["status"] == "interrupted"
        before = max(e.elapsed for e in store.events(run_id))
        assert before >= 1.5
        task = get_task(TASK)
        s = JupyterHumanSession(store, task, expert="someone-else", sandbox=lambda rec: open_task_sandbox(task, rec),
                                resume=run_id)
        try:
            assert s.run_id == run_id and s.agent == "human:ana"
            assert s.sandbox.container.id != old_container
            assert s.run_cells(["print(open('notes.txt').read())"]) == ["before the crash"]
            assert store.get_run(run_id)["status"] == "running"
            (reply,) = s.run_cells(["%quit"])
        finally:
            s.kernel.shutdown()
            s.sandbox.close()
        assert "without a submission" in reply
        actions = [(e.attrs["lab.action"], e.elapsed) for e in store.events(run_id, kinds=["human_action"])]
        names = [a for a, _ in actions]
        assert names == ["kernel_cell", "kernel_cell", "reattach", "restore", "kernel_cell", "quit"]
        assert all(t >= before for _, t in actions[2:])  # the clock went on from the recorded time
        run = store.get_run(run_id)
        assert run["status"] == "cancelled" and run["elapsed"] >= before
        with pytest.raises(Exception, match="only an interrupted session"):
            HumanSession(store, task, expert="ana", resume=run_id)  # a finished session is not resumed
    finally:
        if proc.poll() is None:
            proc.kill()
        if old_container:
            import docker

            try:
                docker.from_env().containers.get(old_container).remove(force=True)
            except docker.errors.NotFound:
                pass
