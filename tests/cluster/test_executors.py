"""Executors without a cluster: choosing one, fitting tasks to nodes, the checkpointer's config, and the runner's
rule that an interrupted run with no checkpoint starts over."""

from __future__ import annotations

import pytest

from lab.executors import ExecutorError, LocalExecutor, RayExecutor, get_executor
from lab.executors.ray_executor import unfit_reason
from lab.experiment import Experiment
from lab.models import ScriptedModel, ToolCall
from lab.runner import Runner
from lab.tasks.model import Task

GIB = 2**30


def test_get_executor_by_name_and_bad_names():
    assert isinstance(get_executor(), LocalExecutor)
    ray_ex = get_executor("ray", address="10.0.0.5:6379")
    assert isinstance(ray_ex, RayExecutor) and ray_ex.address == "10.0.0.5:6379"
    with pytest.raises(ExecutorError, match="unknown executor 'warp'.*local, ray"):
        get_executor("warp")
    with pytest.raises(ExecutorError, match="--address is for the ray executor"):
        get_executor("local", address="10.0.0.5:6379")


def _task(**resources) -> Task:
    return Task(id="t", suite="s", kind="qa", instructions="x", resources=resources, scoring={"scorer": "exact_match"})


def test_tasks_fit_nodes_by_cpus_memory_and_gpus():
    cpu_nodes = [{"CPU": 2.0, "memory": 4 * GIB}, {"CPU": 8.0, "memory": 16 * GIB}]
    gpu_node = {"CPU": 16.0, "memory": 64 * GIB, "GPU": 2.0}
    assert unfit_reason(_task(cpus=8, memory_gb=16), cpu_nodes) is None
    reason = unfit_reason(_task(gpus=1), cpu_nodes)
    assert "'s/t' needs 1 GPU(s)" in reason and "most on one node: 0" in reason
    assert unfit_reason(_task(gpus=2), [*cpu_nodes, gpu_node]) is None
    assert "needs 4 GPU(s)" in unfit_reason(_task(gpus=4), [gpu_node]) and "most on one node: 2" in \
        unfit_reason(_task(gpus=4), [gpu_node])
    # enough CPUs on one node and enough memory on another is not enough
    split = [{"CPU": 8.0, "memory": 4 * GIB}, {"CPU": 1.0, "memory": 64 * GIB}]
    reason = unfit_reason(_task(cpus=8, memory_gb=32), split)
    assert "needs 8 CPU(s) and 32 GiB of memory on one node" in reason
    assert "GPU" in unfit_reason(_task(gpus=1), [])


def test_remote_checkpointer_sends_only_plain_config():
    from lab.executors.remote_store import _plain

    conf = {"configurable": {"thread_id": "r1", "checkpoint_ns": "", "checkpoint_id": "c9",
                             "__pregel_send": object(), "callbacks": [object()]},
            "metadata": {"source": "loop", "step": 3, "obj": object()}, "callbacks": object()}
    assert _plain(conf) == {"configurable": {"thread_id": "r1", "checkpoint_ns": "", "checkpoint_id": "c9"},
                            "metadata": {"source": "loop", "step": 3}}


def test_interrupted_run_without_checkpoint_starts_over(store):
    """A run lost before its first checkpoint (e.g. while its sandbox started) cannot be resumed: rerunning
    the batch starts that combination over as a new run and leaves the old one as it was."""
    exp = Experiment.from_dict({"name": "redo", "tasks": ["medqa-open/dev-0001"], "loops": ["react"],
                                "models": ["m"], "task_scoring": False})
    (combo,) = exp.combos()
    lost = store.create_run({"combo": combo.key(exp)}, task=combo.task.key, batch_id=exp.batch_id)
    store.finish_run(lost, "interrupted", error="the Ray node or worker running it was lost (NodeDiedError)")

    def model(name):
        return ScriptedModel([ToolCall("", "submit", {"answer": "Ceftriaxone"})], name=name)

    (outcome,) = Runner(store, progress=False, model_loader=model).run(exp).outcomes
    assert outcome.status == "done" and outcome.run_id != lost and outcome.answer == "Ceftriaxone"
    assert store.get_run(lost)["status"] == "interrupted"


def test_rd_optimise_gpu_variants_are_unavailable_not_failed_without_a_gpu(store, monkeypatch):
    from lab.tasks import validate

    monkeypatch.setattr(validate, "gpu_count", lambda: 0)  # this machine, or any without a GPU
    exp = Experiment.from_dict({"name": "gpu", "tasks": [{"suite": "rd-optimise", "ids": [
        "count_close_pairs/gpu", "tiny_model_loss/gpu", "broken_layer/gpu"]}], "loops": ["react"], "models": ["m"]})

    def model(name):
        raise AssertionError("an unavailable task must not load a model")

    batch = Runner(store, progress=False, model_loader=model).run(exp)
    assert [o.status for o in batch.outcomes] == ["unavailable"] * 3 and batch.count("failed") == 0
    assert "rd-optimise/tiny_model_loss/gpu' needs 1 GPU(s); this machine has 0" in batch.outcomes[1].error
    assert store.list_runs() == []


def test_ray_executor_names_a_missing_or_malformed_cluster_address(store):
    from lab.executors.ray_executor import connect

    with pytest.raises(ExecutorError, match="expected HOST:PORT"):
        connect("headnode")
    with pytest.raises(ExecutorError, match=r"no Ray cluster at 127.0.0.1:1 \(Connection refused\); start one"):
        connect("127.0.0.1:1")
