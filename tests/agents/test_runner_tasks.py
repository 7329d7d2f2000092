"""The runner prepares each task's environment as the task says, METR task families included."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.experiment import Experiment
from lab.models import ScriptedModel, ToolCall
from lab.runner import Runner

SOLUTION = Path(__file__).resolve().parents[2] / "lab/tasks/suites/rd-optimise/solutions/broken_layer/model.py"


@pytest.fixture(scope="module")
def docker_base():
    from lab.sandbox import SandboxUnavailable

    try:
        from lab.sandbox.docker import docker_client

        docker_client()
    except SandboxUnavailable as e:
        pytest.skip(f"no Docker engine: {e}")
    from lab.sandbox.images import ensure_image

    ensure_image("base", log=lambda _line: None)


@pytest.mark.docker
@pytest.mark.parametrize("solve, expected", [(False, 0.0), (True, 1.0)])
def test_metr_task_is_installed_started_and_scored_by_the_runner(store, docker_base, solve, expected):
    """A scripted expert edits the broken layer (or not) through the repo-setup loop; the family's own
    ``start`` and ``score`` run in the sandbox, so the normalised score is the task's 1.0 (or 0.0)."""
    calls = [ToolCall("", "shell", {"command": "test -f model.py && echo present"})]
    if solve:
        calls.append(ToolCall("", "edit_file", {"path": "model.py", "old": "", "new": SOLUTION.read_text()}))
    calls.append(ToolCall("", "submit", {"answer": "null"}))
    exp = Experiment.model_validate({
        "name": "rd", "tasks": ["rd-optimise/broken_layer/main"], "loops": ["repo_setup"],
        "models": ["expert"], "concurrency": 1})
    batch = Runner(store, progress=False, model_loader=lambda _name: ScriptedModel(list(calls))).run(exp)
    (o,) = batch.outcomes
    assert o.status == "done", o.error
    results = [e.attrs["content"] for e in store.events(o.run_id, kinds=["tool_result"])]
    assert "present" in results[0]                      # the family's start() put the starting solution there
    assert o.scores["normalized_score"] == pytest.approx(expected, abs=1e-9)


@pytest.mark.docker
def test_repo_setup_expert_through_the_runner_gets_all_three_super_metrics(store, docker_base):
    from lab.sandbox.images import ensure_image
    from lab.tasks import get_task
    from lab.tasks.experts import expert_model

    ensure_image("repo-setup", log=lambda _line: None)
    task = get_task("repo-setup/tinyclf-pinned-version")
    exp = Experiment.model_validate({"name": "rs", "tasks": [task.key], "loops": ["repo_setup"],
                                     "models": ["expert"], "concurrency": 1})
    (o,) = Runner(store, progress=False, model_loader=lambda _name: expert_model(task)).run(exp).outcomes
    assert o.status == "done", o.error
    assert {k: o.scores[k] for k in ("output_match", "landmarks", "entrypoint")} == {
        "output_match": 1.0, "landmarks": 1.0, "entrypoint": 1.0}


@pytest.mark.docker
def test_resume_whose_snapshot_is_gone_starts_over(store, docker_base):
    """A run whose step snapshots and workdir archives are both gone (the snapshot cap dropped them) cannot
    resume with its files: the combination starts over as a new run, and the old run stays interrupted with the
    reason."""
    import docker

    from lab.sandbox.images import ensure_image
    from lab.tasks import get_task
    from lab.tasks.experts import expert_model

    ensure_image("repo-setup", log=lambda _line: None)
    task = get_task("repo-setup/tinyclf-pinned-version")
    exp = Experiment.model_validate({"name": "gone", "tasks": [task.key], "loops": ["repo_setup"],
                                     "models": ["expert"], "concurrency": 1})

    def interrupted(_name):
        calls = iter([ToolCall("", "shell", {"command": "echo step one"})])

        def reply(_messages):
            try:
                return next(calls)
            except StopIteration:
                raise KeyboardInterrupt from None

        return ScriptedModel(reply)

    (first,) = Runner(store, progress=False, model_loader=interrupted).run(exp).outcomes
    assert first.status == "interrupted"
    refs = [e.attrs["lab.snapshot.ref"] for e in store.events(first.run_id) if "lab.snapshot.ref" in e.attrs]
    assert refs
    client = docker.from_env()
    for ref in refs:                                   # closing the sandbox removed them; make sure
        try:
            client.images.remove(ref, force=True)
        except docker.errors.ImageNotFound:
            pass
    from lab.sandbox.snapshot_store import SnapshotStore

    SnapshotStore.beside(store.path).remove()           # and the workdir archives (as the snapshot cap would)
    (second,) = Runner(store, progress=False, model_loader=lambda _name: expert_model(task)).run(exp).outcomes
    assert second.status == "done" and second.run_id != first.run_id
    assert second.scores["output_match"] == 1.0
    old = store.get_run(first.run_id)
    assert old["status"] == "interrupted" and "snapshot is gone" in old["error"]
