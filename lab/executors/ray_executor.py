"""Runs on a Ray cluster: each combination is a Ray task whose resource request is the task's declared CPUs,
memory and GPUs, so GPU tasks land on GPU nodes.

The driver (``lab run --executor ray``) runs on a node of the cluster. A SQLite store stays there, and a
:class:`~lab.executors.remote_store.StoreSink` actor pinned to that node writes every event and checkpoint the
remote runs send, as they happen. With a PostgreSQL store each worker process opens the store itself (its own
connections; the URL travels in the batch's pickled run context, never in a log or a task's name) and writes
straight to the server, so several drivers and their workers write one store at once. A run whose node or
worker dies is marked ``interrupted`` with the reason; running the batch again resumes just those runs (from
their last checkpoint, on any node).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import socket
import threading
import uuid
from typing import TYPE_CHECKING

from lab.executors.base import EXECUTORS, Batch, ExecutorError
from lab.pipeline import Outcome, RunContext, abandon_run, run_combo
from lab.traces.schema import RunStatus
from lab.traces.store import TraceStore

if TYPE_CHECKING:
    from ray import ObjectRef
    from ray.actor import ActorProxy

    from lab.executors.remote_store import StoreSink
    from lab.experiment import Combo
    from lab.tasks.model import Task


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


@EXECUTORS.register("ray")
class RayExecutor:
    """Runs each combination as a Ray task on a cluster (the cluster's free resources decide how many run at
    once; ``concurrency`` is not used).

    Args:
        address: The cluster (``HOST:PORT`` of its head); ``None``: ``$RAY_ADDRESS`` or the local cluster.
    """

    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        self.address = address

    def start(self, context: RunContext, workers: int) -> Batch:
        """Connect to the cluster and begin a batch there (``workers`` is not used)."""
        connect(self.address)
        return _RayBatch(context)


_contexts: dict[str, RunContext] = {}
"""In a worker process: the latest batch's run context (over a remote store, or its own PostgreSQL store)."""
STOP_POLL_S = 0.5


def _run_remote(token: str, context: list[ObjectRef[RunContext]], sink: ActorProxy[StoreSink], combo: Combo,
                key: str, resume_id: str | None) -> Outcome:
    """A Ray task: run one combination with the same code the local executor uses; when the driver stops the
    batch (Ctrl-C), the run pauses at its next step as it would locally."""
    import ray

    if token not in _contexts:
        for old in _contexts.values():  # an earlier batch's own store (its connections; a RemoteStore has none)
            if isinstance(old.store, TraceStore):
                old.store.close()
        _contexts.clear()
        _contexts[token] = ray.get(context[0])
    ctx = _contexts[token]
    finished = threading.Event()

    def watch() -> None:  # again after the stop: a run registers as active only once its sandbox is up
        while not finished.wait(STOP_POLL_S):
            try:
                if ray.get(sink.stopped.remote()):
                    ctx.stop.set()
            except Exception:  # noqa: BLE001 - the batch is over
                return

    if ray.get(sink.stopped.remote()):
        ctx.stop.set()
    threading.Thread(target=watch, name="lab-stop-watch", daemon=True).start()
    try:
        return run_combo(ctx, combo, key, resume_id)
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
    def __init__(self, context: RunContext) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from lab.executors.remote_store import RemoteStore, StoreSink
        from lab.traces.pg_store import PostgresTraceStore

        self.context = context
        direct = isinstance(context.store, PostgresTraceStore)  # workers write the server themselves
        path = None if direct else str(context.store.path.resolve())
        here = ray.get_runtime_context().get_node_id()
        self.sink = ray.remote(StoreSink).options(
            num_cpus=0, max_concurrency=64, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False),
        ).remote(path)
        ray.get(self.sink.ping.remote())
        remote = context if path is None else dataclasses.replace(context, store=RemoteStore(self.sink, path))
        self.context_ref = [ray.put(remote)]
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
            out.set_result(Outcome.of(combo, key, "unavailable", error=reason))
            return out
        res = combo.task.resources
        ref = self.task.options(num_cpus=res.cpus, memory=int(res.memory_gb * 2**30), num_gpus=res.gpus,
                                max_retries=0, retry_exceptions=False, scheduling_strategy="SPREAD",
                                name=f"lab:{combo.task.key}").remote(
            self.token, self.context_ref, self.sink, combo, key, resume_id)
        ref.future().add_done_callback(lambda done: self._settle(out, done, combo, key))
        return out

    def _settle(self, out: cf.Future, done: cf.Future, combo: Combo, key: str) -> None:
        from ray import exceptions as rex

        store, exp = self.context.store, self.context.experiment
        try:
            out.set_result(done.result())
            return
        except rex.TaskCancelledError:
            reason = "cancelled"
        except rex.RayTaskError as e:  # run_combo records its own failures; this is what escaped it
            cause = e.cause if e.cause is not None else e
            error = f"{type(cause).__name__}: {cause}"
            out.set_result(Outcome.of(combo, key, "failed", abandon_run(store, exp, key, error, RunStatus.FAILED),
                                      error=error))
            return
        except rex.RayError as e:  # the node or the worker process died
            first = str(e).strip().splitlines()[0] if str(e).strip() else ""
            reason = f"the Ray node or worker running it was lost ({type(e).__name__}: {first[:300]})"
        except BaseException as e:  # noqa: BLE001 - whatever happened, the batch gets an outcome
            reason = f"{type(e).__name__}: {e}"
        out.set_result(Outcome.of(combo, key, "interrupted", abandon_run(store, exp, key, reason), error=reason))

    def shutdown(self, *, cancel: bool = False) -> None:
        import ray

        if cancel:  # running runs pause at their next step, the rest return at once: all end interrupted
            ray.get(self.sink.stop.remote())
        cf.wait(self.futures)
        # ray types an actor as ActorProxy (handle or class, so @ray.method calls type-check); kill takes the handle
        ray.kill(self.sink)  # type: ignore[arg-type]
