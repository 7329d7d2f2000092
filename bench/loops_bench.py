"""Agent-loop benchmarks.

1. Per-step overhead of the loop machinery (LangGraph graph, SQLite checkpoint per node, trace events)
   with a scripted model, a no-op tool and a no-op sandbox, against a bare Python loop doing the same
   model and tool calls with nothing recorded. Target: <= 5 ms per step (median).
2. A batch of scripted repo-setup runs against real Docker sandboxes through the runner, concurrency 8
   versus 1 (total wall time).

    .venv/bin/python bench/loops_bench.py [--steps 300] [--runs 32] [--skip-docker]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

from lab.agents import Limits, ReActAgent
from lab.models import Message, ScriptedModel, ToolCall
from lab.sandbox import SnapshotRef
from lab.tools import ToolContext, tool
from lab.traces import TraceStore


@tool
def noop(x: int) -> str:
    """Do nothing.

    Args:
        x: Ignored.
    """
    return "ok"


class NoopSandbox:
    """A sandbox that does nothing (isolates the loop's own cost)."""

    workdir = "/work"

    def snapshot(self) -> SnapshotRef:
        return SnapshotRef("noop", "0")

    def restore(self, ref: SnapshotRef) -> None:
        pass

    def copy_out(self, src: str, dest: str) -> None:
        pass  # an empty workdir: each step's snapshot archive is an empty tar

    def close(self) -> None:
        pass


def bench_overhead(steps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as d:
        store = TraceStore(Path(d) / "traces.db")
        model = ScriptedModel([ToolCall("", "noop", {"x": 1})], cycle=True)
        run = ReActAgent(model, [noop], limits=Limits(steps=steps)).start(store, "bench", sandbox=NoopSandbox())
        t0 = time.perf_counter()
        res = run.run()
        total = time.perf_counter() - t0
        spans = [e.ts for e in store.events(res.run_id, kinds=["span"])]
        per_step = [b - a for a, b in itertools.pairwise(spans)]
        store.close()

    # baseline: the same model and tool calls in a bare loop, nothing recorded or checkpointed
    model = ScriptedModel([ToolCall("", "noop", {"x": 1})], cycle=True)
    msgs = [Message("system", "s"), Message("user", "bench")]
    specs = [noop.spec]
    base = []
    for _ in range(steps):
        t = time.perf_counter()
        r = model.chat(msgs, tools=specs)
        c = r.message.tool_calls[0]
        out = noop(c.arguments, ToolContext())
        msgs += [r.message, Message("tool", out, tool_call_id=c.id)]
        base.append(time.perf_counter() - t)
    return {"steps": res.steps, "total_s": total, "median_ms": statistics.median(per_step) * 1e3,
            "p90_ms": sorted(per_step)[int(0.9 * len(per_step))] * 1e3,
            "base_median_ms": statistics.median(base) * 1e3}


def repo_script(messages):
    n = sum(m.role == "tool" for m in messages)
    if n == 0:
        return ToolCall("", "shell", {"command": "mkdir -p proj && cd proj && echo 'print(0.5)' > train.py"})
    if n == 1:
        return ToolCall("", "shell", {"command": "python3 train.py"})
    return ToolCall("", "submit", {"answer": '{"accuracy": 0.5}'})


def bench_batch(runs: int, concurrency: int, store: TraceStore) -> float:
    from lab.experiment import Experiment
    from lab.runner import Runner

    d = Path(store.path).parent
    (d / "task.yaml").write_text("id: bench\nkind: repo\ninstructions: Run train.py and submit its accuracy.\n"
                                 "sandbox: {image: base, workdir: /work}\nscoring: {scorer: exact_match}\n"
                                 "answer: {accuracy: 0.5}\n")
    exp = Experiment.from_dict({"name": f"bench-c{concurrency}", "tasks": [{"path": str(d / "task.yaml")}],
                                "loops": ["repo_setup"], "models": ["scripted"], "seeds": list(range(runs)),
                                "concurrency": concurrency})
    t0 = time.perf_counter()
    batch = Runner(store, progress=False, model_loader=lambda n: ScriptedModel(repo_script)).run(exp)
    wall = time.perf_counter() - t0
    bad = [o for o in batch.outcomes if o.status != "done" or o.answer != {"accuracy": 0.5}]
    assert not bad, bad[:2]
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--runs", type=int, default=32)
    ap.add_argument("--skip-docker", action="store_true")
    args = ap.parse_args()
    o = bench_overhead(args.steps)
    print("\n## Per-step overhead (scripted model, no-op tool, no-op sandbox)")
    print("| loop | steps | median ms/step | p90 ms/step | ratio to bare loop |")
    print("|---|---|---|---|---|")
    print(f"| bare Python loop (nothing recorded) | {args.steps} | {o['base_median_ms']:.3f} | - | 1.0 |")
    print(f"| ReAct on LangGraph + SQLite checkpoints + trace events | {o['steps']} | {o['median_ms']:.3f} | "
          f"{o['p90_ms']:.3f} | {o['median_ms'] / o['base_median_ms']:.1f} |")
    print(f"target <= 5 ms median: {'met' if o['median_ms'] <= 5 else 'NOT met'}")
    t = time.perf_counter()
    for _ in range(200):
        sum(range(20_000))
    print(f"CPU reference: sum(range(20000)) takes {(time.perf_counter() - t) / 200 * 1e3:.2f} ms here; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.skip_docker:
        return
    with tempfile.TemporaryDirectory() as d:
        store = TraceStore(Path(d) / "traces.db")
        w1 = bench_batch(args.runs, 1, store)
        w8 = bench_batch(args.runs, 8, store)
        store.close()
    print(f"\n## {args.runs} scripted repo-setup runs against Docker (3 steps, snapshot after each)")
    print("| concurrency | wall s | runs/s | speed-up vs 1 |")
    print("|---|---|---|---|")
    print(f"| 1 | {w1:.1f} | {args.runs / w1:.2f} | 1.0 |")
    print(f"| 8 | {w8:.1f} | {args.runs / w8:.2f} | {w1 / w8:.2f} |")


if __name__ == "__main__":
    main()
