"""A scripted human expert on the kernel inside the task's sandbox, without a browser (the same session,
observer and magics as `lab human --jupyter`): cells recorded as human_action events, the clock's pauses,
intermediate-score refusal, submission and SUPER's three scores."""

from __future__ import annotations

import json

import pytest

from lab.agents.human_jupyter import JupyterHumanSession
from lab.tasks import get_task
from lab.tasks.environment import open_task_sandbox

pytestmark = pytest.mark.docker


@pytest.fixture
def session(store, kernel_image):
    task = get_task("repo-setup/tinyclf-pinned-version")
    s = JupyterHumanSession(store, task, expert="ana", sandbox=lambda rec: open_task_sandbox(task, rec))
    yield s
    s.kernel.shutdown()
    s.sandbox.close()


def test_scripted_human_solves_repo_setup_on_the_kernel(store, session):
    outs = session.run_cells([
        "%cd /work/tinyclf\n"
        "!sed -i 's/tabulate==0.7.5/tabulate>=0.9/' requirements.txt && pip install -r requirements.txt",
        "%pause coffee", "%status", "%resume",
        "!python train.py --alpha 0.5",
        "import json\nprint(json.dumps({'accuracy': json.load(open('out/metrics.json'))['test_accuracy']}))",
        "%score",
    ])
    assert "Successfully installed tabulate" in outs[0]
    assert outs[1].startswith("clock paused") and "(paused)" in outs[2] and outs[3] == "clock running"
    assert outs[6] == "this task does not give intermediate scores"
    (reply,) = session.run_cells([f"%submit {outs[5].strip()}"])
    assert "output_match=1.0" in reply and reply.endswith("the session has ended")
    assert session.result.status == "done" and session.result.answer == json.loads(outs[5])
    with pytest.raises(Exception, match="session has ended"):
        session.run_cells(["1"])
    actions = [e.attrs for e in store.events(session.run_id, kinds=["human_action"])]
    assert [a["lab.action"] for a in actions] == ["kernel_cell", "pause", "resume", "kernel_cell", "kernel_cell",
                                                 "submit"]
    cells = [a for a in actions if a["lab.action"] == "kernel_cell"]
    assert cells[1]["lab.kernel.outputs"]["code"] == "!python train.py --alpha 0.5"
    assert [c["lab.kernel.outputs"]["execution_count"] for c in cells] == [1, 5, 6]
    frame = store.scores_frame(final_only=True)
    scores = dict(zip(frame["scorer"], frame["value"], strict=True))
    assert {k: scores[k] for k in ("output_match", "landmarks", "entrypoint")} == {
        "output_match": 1.0, "landmarks": 1.0, "entrypoint": 1.0}
    run = store.get_run(session.run_id)
    assert run["status"] == "done" and run["is_human"]


def test_cells_after_a_kernel_restart_are_still_recorded(store, session):
    assert session.run_cells(["v = 1; print(v)"]) == ["1"]
    session.kernel.restart()  # what JupyterLab's "Restart kernel" does through the provisioner
    outs = session.run_cells(["print('v' in dir())", "%quit"])
    assert outs == ["False", "session ended without a submission"]
    cells = [e.attrs["lab.arguments"]["code"] for e in store.events(session.run_id, kinds=["human_action"])
             if e.attrs["lab.action"] == "kernel_cell"]
    assert cells == ["v = 1; print(v)", "print('v' in dir())"]
    assert store.get_run(session.run_id)["status"] == "cancelled"


def test_an_idle_kernel_pauses_the_clock_until_the_next_cell(store, kernel_image):
    import time

    task = get_task("repo-setup/tinyclf-pinned-version")
    s = JupyterHumanSession(store, task, expert="ana", sandbox=lambda rec: open_task_sandbox(task, rec),
                            idle_pause_s=1.0)
    try:
        s.run_cells(["x = 1"])
        time.sleep(3.0)
        assert s.recorder.clock.paused
        worked = s.recorder.clock.elapsed()
        time.sleep(1.0)
        assert s.recorder.clock.elapsed() == worked  # paused: no working time passes
        s.run_cells(["x + 1"])
        assert not s.recorder.clock.paused
        s.run_cells(["%quit"])
    finally:
        s.kernel.shutdown()
        s.sandbox.close()
    actions = [(e.attrs["lab.action"], e.attrs.get("lab.reason"))
               for e in store.events(s.run_id, kinds=["human_action"])]
    assert actions == [("kernel_cell", None), ("pause", "idle"), ("resume", None), ("kernel_cell", None),
                       ("quit", None)]


def test_jupyter_needs_a_task_with_a_sandbox(store):
    from lab.errors import LabError

    task = get_task("medqa-open/dev-0001")
    with pytest.raises(LabError, match="has no sandbox: --jupyter needs one"):
        JupyterHumanSession(store, task, expert="ana", sandbox=None)
    assert store.list_runs() == []  # nothing recorded for a refused session
