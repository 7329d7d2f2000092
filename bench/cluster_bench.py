"""Executors at scale: a batch of scripted runs with real Docker sandboxes, on the local executor (threads in
this process) and on a two-node Ray cluster started on this machine (a head and a second node, separate
``ray start`` processes), in one run. Prints a table; ratios are Ray / local.

Measured:
- batch wall time: the whole batch through ``Runner.run`` (same task × seed combinations, same concurrency:
  the local executor gets as many threads as the cluster has run slots);
- per-run times: runs submitted one at a time, alternately to each executor (same combinations, same machine
  load): submit to outcome; the run's own span in the store (first to last event: on Ray every event is
  committed in the driver's store through the store actor before the run goes on); and the time outside
  that span (model and agent set-up, sandbox removal after the last event, and on Ray the dispatch to a
  worker and the outcome's way back);
- the Ray executor's scheduling overhead: per run, Ray's outside-the-run time minus local's (paired).

    .venv/bin/python bench/cluster_bench.py            # 200 runs (a few minutes)
    .venv/bin/python bench/cluster_bench.py --runs 40  # quicker
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "cluster")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import workload  # noqa: E402  (the cluster tests' scripted batch; Ray workers import it by this name)
from ray_nodes import LocalRayCluster  # noqa: E402

from lab.executors import LocalExecutor, RayExecutor  # noqa: E402
from lab.runner import Runner  # noqa: E402
from lab.traces import TraceStore  # noqa: E402


def one_at_a_time(runners: dict[str, Runner], exp, n: int) -> dict[str, dict[str, list[float]]]:
    """Submit ``n`` runs one after another to each executor in turn (so both see the same machine load).

    Returns, per executor, seconds per run: ``wall`` (submit to outcome), ``span`` (the run's first to last
    event in the store) and ``outside`` (wall minus span: getting the run started and its outcome back).
    """
    batches = {k: r.executor.start(r, exp, 1) for k, r in runners.items()}
    out: dict[str, dict[str, list[float]]] = {k: {"wall": [], "span": [], "outside": []} for k in runners}
    try:
        for combo in exp.combos()[:n]:
            for k, batch in batches.items():
                t0 = time.time()
                res = batch.submit(combo, combo.key(exp), None).result()
                wall = time.time() - t0
                assert res.status == "done", res
                first, last = runners[k].store.query("SELECT MIN(ts), MAX(ts) FROM events WHERE run_id=?",
                                                     (res.run_id,))[0]
                out[k]["wall"].append(wall)
                out[k]["span"].append(last - first)
                out[k]["outside"].append(wall - (last - first))
    finally:
        for batch in batches.values():
            batch.shutdown()
    return out


def ms(xs: list[float]) -> str:
    return f"{statistics.median(xs) * 1000:.1f} (p90 {sorted(xs)[int(0.9 * (len(xs) - 1))] * 1000:.0f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200, help="Runs in the batch (tasks × 4 seeds).")
    ap.add_argument("--sequential", type=int, default=30, help="Runs submitted one at a time for the overhead.")
    ap.add_argument("--cpus", type=int, default=2, help="Logical CPUs per Ray node (a run asks for 0.5).")
    args = ap.parse_args()

    seeds = 4
    tmp = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    tasks = workload.write_tasks(tmp, max(1, args.runs // seeds))
    exp = workload.experiment(tasks, name="bench", seeds=seeds)
    slots = 2 * int(args.cpus / 0.5)
    exp.concurrency = slots
    n = len(exp.combos())
    print(f"{n} runs ({n // seeds} tasks x {seeds} seeds), Docker sandboxes, {slots} at once", flush=True)

    cluster = LocalRayCluster(nodes=2, cpus=args.cpus, memory_gb=4)
    t0 = time.time()
    cluster.start()
    started = time.time() - t0
    try:
        import ray

        ray.init(address=cluster.address, log_to_driver=False)
        rows = []
        local = Runner(TraceStore(tmp / "local.db"), progress=False, model_loader=workload.load_model,
                       executor=LocalExecutor())
        remote = Runner(TraceStore(tmp / "ray.db"), progress=False, model_loader=workload.load_model,
                        executor=RayExecutor(cluster.address))
        (tmp / "warm").mkdir()
        warm = workload.experiment(workload.write_tasks(tmp / "warm", 8), name="warm-up")
        warm.concurrency = slots
        for runner in (local, remote):  # start Ray's worker processes and the image's page cache
            runner.run(warm)

        walls = {}
        for label, runner in (("local", local), ("ray", remote)):
            t0 = time.time()
            result = runner.run(exp)
            walls[label] = time.time() - t0
            assert result.count("done") == n, [(o.status, o.error) for o in result.outcomes if o.status != "done"]
        rows.append(("batch wall time (s)", f"{walls['local']:.1f}", f"{walls['ray']:.1f}",
                     f"{walls['ray'] / walls['local']:.2f}"))
        rows.append(("runs per second", f"{n / walls['local']:.2f}", f"{n / walls['ray']:.2f}",
                     f"{walls['local'] / walls['ray']:.2f}"))

        seq = workload.experiment(tasks, name="one-at-a-time", seeds=1)
        t = one_at_a_time({"local": local, "ray": remote}, seq, args.sequential)
        lo, ro = t["local"], t["ray"]
        extra = [r - loc for r, loc in zip(ro["outside"], lo["outside"], strict=True)]
        rows.append(("per run, submit to outcome, median ms", ms(lo["wall"]), ms(ro["wall"]),
                     f"{statistics.median(ro['wall']) / statistics.median(lo['wall']):.2f}"))
        rows.append(("  of which the run's own span (first to last event)", ms(lo["span"]), ms(ro["span"]),
                     f"{statistics.median(ro['span']) / statistics.median(lo['span']):.2f}"))
        rows.append(("  of which outside the run (start-up, sandbox removal, outcome back)", ms(lo["outside"]),
                     ms(ro["outside"]), f"{statistics.median(ro['outside']) / statistics.median(lo['outside']):.2f}"))
        rows.append(("Ray scheduling overhead: outside-the-run time over local's, paired, median ms", "",
                     ms(extra), ""))
        nodes = (cluster.runs_on(0), cluster.runs_on(1))
    finally:
        cluster.stop()

    print(f"\ncluster start (2 nodes): {started:.1f} s; runs per node on Ray (incl. warm-up): {nodes}")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print("| measure | local executor | Ray, 2 nodes | ratio (Ray / local) |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    over = statistics.median(extra)
    print(f"\ntarget: Ray scheduling overhead <= 50 ms median -> {'met' if over <= 0.05 else 'NOT met'} "
          f"({over * 1000:.1f} ms)")


if __name__ == "__main__":
    main()
