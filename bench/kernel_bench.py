"""Kernel tool round-trip against the ``python`` tool, in one run, in the same sandbox.

The ``python`` tool writes the cell to a file and starts ``python3`` in the sandbox per call; the ``kernel``
tool sends the cell to a resident IPython kernel in the sandbox (ZeroMQ, forwarded through the engine). Both
are timed through the tool API (what an agent's step pays). Prints median and p95 per call and the ratio
python / kernel, and the kernel's one-off start.

    .venv/bin/python bench/kernel_bench.py            # 100 calls each
    .venv/bin/python bench/kernel_bench.py --n 20     # fewer
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.sandbox import SandboxSpec, open_sandbox  # noqa: E402
from lab.sandbox.images import ensure_image  # noqa: E402
from lab.tools import ToolContext, kernel, python  # noqa: E402


def stats(samples: list[float]) -> tuple[float, float]:
    """(median, p95) in milliseconds."""
    s = sorted(samples)
    return statistics.median(s) * 1000, s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="calls per tool")
    args = ap.parse_args()
    image = ensure_image("repo-setup", log=lambda _line: None)
    rows = []
    with open_sandbox(SandboxSpec(image=image)) as box:
        ctx = ToolContext(sandbox=box, timeout=60)
        t = time.perf_counter()
        assert kernel({"code": "1+1"}, ctx).strip() == "2"
        start = time.perf_counter() - t
        samples: dict[str, list[float]] = {"python": [], "kernel": []}
        for _ in range(args.n):  # interleaved, so load changes hit both alike
            for name, fn, code in (("python", python, "print(1+1)"), ("kernel", kernel, "1+1")):
                t = time.perf_counter()
                out = fn({"code": code}, ctx)
                samples[name].append(time.perf_counter() - t)
                assert out.strip() == "2", (name, out)
        py, kn = stats(samples["python"]), stats(samples["kernel"])
        rows.append(("`1+1` round-trip", py, kn))
    print(f"image {image}; {args.n} calls each, interleaved; ms (median / p95); ratio = python / kernel median; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| operation | python tool (new process per call) | kernel tool (resident kernel) | ratio |")
    print("|---|---|---|---|")
    for name, (pm, pp), (km, kp) in rows:
        print(f"| {name} | {pm:.2f} / {pp:.2f} | {km:.2f} / {kp:.2f} | {pm / km:.1f}x |")
    print(f"| kernel start (first cell, once per sandbox) | - | {start * 1000:.0f} | - |")


if __name__ == "__main__":
    main()
