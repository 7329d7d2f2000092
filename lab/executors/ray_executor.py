"""Runs on a Ray cluster: each combination is a Ray task whose resource request is the task's declared CPUs,
memory and GPUs, so GPU tasks land on GPU nodes.

The driver (``lab run --executor ray``) must run on a node of the cluster: its trace store stays there, and a
:class:`~lab.executors.remote_store.StoreSink` actor pinned to that node writes every event and checkpoint the
remote runs send, as they happen. A run whose node or worker dies is marked ``interrupted`` with the reason;
running the batch again resumes just those runs (from their last checkpoint, on any node).
"""

from __future__ import annotations

import concurrent.futures as cf
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from lab.errors import LabError
from lab.executors.local import Batch
from lab.traces.schema import Event, EventKind, RunStatus

if TYPE_CHECKING:
    from lab.experiment import Combo, Experiment
    from lab.runner import Outcome, Runner
    from lab.tasks.model import Task


class ExecutorError(LabError):
    """An executor cannot start (no Ray installed, no cluster at the address ...)."""


def connect(address: str | None = None) -> None:
    """Connect this process to a Ray cluster once (``None``: ``$RAY_ADDRESS`` or the cluster running here).

    Raises:
        ExecutorError: Ray is not installed or no cluster answers at ``address``.
    """
    try:
        import ray
    except ImportError:
        raise ExecutorError("the Ray executor needs ray: pip install 'expertlab[cluster]'") from None
    hint = "start one with `ray start --head` or pass --address HOST:PORT"
    if address:  # Ray itself keeps retrying an address nobody answers at for minutes
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ExecutorError(f"Ray cluster address {address!r}: expected HOST:PORT (the head's GCS port)")
        try:
            socket.create_connection((host, int(port)), timeout=5).close()
        except OSError as e:
            raise ExecutorError(f"no Ray cluster at {address} ({e.strerror or e}); {hint}") from None
    if ray.is_initialized():
        return
    try:
        ray.init(address=address or "auto", log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = address or "$RAY_ADDRESS or this machine"
        raise ExecutorError(f"no Ray cluster reachable at {where} ({type(e).__name__}: {e}); {hint}") from None


class RayExecutor:
    """Runs each combination as a Ray task on a cluster (the cluster's free resources decide how many run at
    once; ``concurrency`` is not used).

    Args:
        address: The cluster (``HOST:PORT`` of its head); ``None``: ``$RAY_ADDRESS`` or the local cluster.
    """

    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        self.address = address

    def start(self, runner: Runner, experiment: Experiment, workers: int) -> Batch:
        connect(self.address)
        return _RayBatch(runner, experiment)


_contexts: dict[str, tuple[Any, Runner, Experiment]] = {}
"""In a worker process: the latest batch's sink, runner (over a remote store) and experiment."""
STOP_POLL_S = 0.5


def _run_remote(token: str, context: list[Any], combo: Combo, key: str, resume_id: str | None) -> Outcome:
    """A Ray task: run one combination with the same code the local executor uses; when the driver stops the
    batch (Ctrl-C), the run pauses at its next step as it would locally."""
    import ray

    from lab.executors.remote_store import RemoteStore
    from lab.runner import Runner

    if token not in _contexts:
        sink, path, options, experiment = ray.get(context[0])
        _contexts.clear()
        _contexts[token] = (sink, Runner(RemoteStore(sink, path), progress=False, **options), experiment)
    sink, runner, experiment = _contexts[token]
    finished = threading.Event()

    def watch() -> None:  # again after the stop: a run registers as active only once its sandbox is up
        while not finished.wait(STOP_POLL_S):
            try:
                if ray.get(sink.stopped.remote()):
                    runner.stop()
            except Exception:  # noqa: BLE001 - the batch is over
                return

    if ray.get(sink.stopped.remote()):
        runner.stop()
    threading.Thread(target=watch, name="lab-stop-watch", daemon=True).start()
    try:
        return runner.run_one(experiment, combo, key, resume_id)
    finally:
        finished.set()


def unfit_reason(task: Task, nodes: list[dict[str, float]]) -> str | None:
    """Why no node of a cluster can ever run ``task`` (``None`` when one can).

    Args:
        task: The task; its declared CPUs, memory and GPUs are what a run asks for.
        nodes: Each live node's total resources, as ``ray.nodes()`` gives them (``CPU``, ``memory`` in bytes,
            ``GPU``).
    """
    res = task.resources
    need = {"CPU": res.cpus, "memory": res.memory_gb * 2**30, "GPU": res.gpus}
    if any(all(node.get(k, 0) >= v for k, v in need.items() if v) for node in nodes):
        return None
    if res.gpus and not any(node.get("GPU", 0) >= res.gpus for node in nodes):
        most = max((node.get("GPU", 0) for node in nodes), default=0)
        return (f"task '{task.key}' needs {res.gpus} GPU(s); no node of the Ray cluster has that many "
                f"(most on one node: {most:g})")
    return (f"task '{task.key}' needs {res.cpus:g} CPU(s) and {res.memory_gb:g} GiB of memory on one node; "
            "no node of the Ray cluster has that much")


class _RayBatch:
    def __init__(self, runner: Runner, experiment: Experiment) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from lab.executors.remote_store import StoreSink

        self.runner, self.experiment = runner, experiment
        here = ray.get_runtime_context().get_node_id()
        self.sink = ray.remote(StoreSink).options(
            num_cpus=0, max_concurrency=64, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
        ).remote(str(runner.store.path.resolve()))
        ray.get(self.sink.ping.remote())
        options = {"model_loader": runner.model_loader, "sandbox_opener": runner.sandbox_opener,
                   "approver": runner.approver}
        self.context = [ray.put((self.sink, str(runner.store.path.resolve()), options, experiment))]
        self.token = uuid.uuid4().hex
        self.task = ray.remote(_run_remote)
        self.nodes = [n["Resources"] for n in ray.nodes() if n["Alive"]]
        self.futures: list[cf.Future] = []

    def submit(self, combo: Combo, key: str, resume_id: str | None) -> cf.Future[Outcome]:
        out: cf.Future = cf.Future()
        out.set_running_or_notify_cancel()
        self.futures.append(out)
        reason = unfit_reason(combo.task, self.nodes)
        if reason:
            out.set_result(self._outcome(combo, key, "unavailable", error=reason))
            return out
        res = combo.task.resources
        ref = self.task.options(num_cpus=res.cpus, memory=int(res.memory_gb * 2**30), num_gpus=res.gpus,
                                max_retries=0, retry_exceptions=False, scheduling_strategy="SPREAD",
                                name=f"lab:{combo.task.key}").remote(
            self.token, self.context, combo, key, resume_id)
        ref.future().add_done_callback(lambda done: self._settle(out, done, combo, key))
        return out

    def _outcome(self, combo: Combo, key: str, status: str, run_id: str | None = None, **kw: Any) -> Outcome:
        from lab.runner import Outcome

        return Outcome(key, combo.task.key, combo.loop.name, combo.model, combo.seed, status, run_id, **kw)

    def _settle(self, out: cf.Future, done: cf.Future, combo: Combo, key: str) -> None:
        from ray import exceptions as rex

        try:
            out.set_result(done.result())
            return
        except rex.TaskCancelledError:
            reason = "cancelled"
        except rex.RayTaskError as e:  # run_one records its own failures; this is what escaped it
            cause = e.cause if e.cause is not None else e
            out.set_result(self._outcome(combo, key, "failed", self._lose(key, f"{type(cause).__name__}: {cause}",
                                                                          RunStatus.FAILED),
                                         error=f"{type(cause).__name__}: {cause}"))
            return
        except rex.RayError as e:  # the node or the worker process died
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            reason = f"the Ray node or worker running it was lost ({type(e).__name__}: {first[:300]})"
        except BaseException as e:  # noqa: BLE001 - whatever happened, the batch gets an outcome
            reason = f"{type(e).__name__}: {e}"
        out.set_result(self._outcome(combo, key, "interrupted", self._lose(key, reason), error=reason))

    def _lose(self, key: str, reason: str, status: RunStatus = RunStatus.INTERRUPTED) -> str | None:
        """Finish the combination's run that was still running remotely (an error event and the status)."""
        store = self.runner.store
        for run in store.list_runs(batch_id=self.experiment.batch_id, status=RunStatus.RUNNING.value):
            if run["config"].get("combo") == key and run["parent_run_id"] is None:
                rid = run["run_id"]
                elapsed = store.query("SELECT COALESCE(MAX(elapsed), 0) FROM events WHERE run_id=?", (rid,))[0][0]
                store.append(Event(rid, EventKind.ERROR.value, {"error.message": reason, "error.where": "executor"},
                                   ts=time.time(), elapsed=elapsed))
                store.finish_run(rid, status.value, error=reason, elapsed=elapsed)
                return rid
        return None

    def shutdown(self, *, cancel: bool = False) -> None:
        import ray

        if cancel:  # running runs pause at their next step, the rest return at once: all end interrupted
            ray.get(self.sink.stop.remote())
        cf.wait(self.futures)
        ray.kill(self.sink)
