"""Live OpenTelemetry: what streaming spans costs a recording run, with the collector up and down.

Records the same run (N model-call-sized events through a RunRecorder, one by one, as agents do) three
ways in one process: no endpoint (the baseline), streaming to a local OTLP/HTTP collector, and streaming
to an endpoint nobody listens on (a dead collector). Prints wall and CPU per event, the ratio to the
baseline, and what the exporter sent and dropped.

    .venv/bin/python bench/live_otlp_bench.py [--events 3000]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab.traces import RunRecorder, TraceStore, live_otlp  # noqa: E402

ATTRS = {"gen_ai.request.model": "m", "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 30,
         "lab.latency_s": 0.2, "gen_ai.output.messages": [{"role": "assistant", "content": "x" * 400}]}


def _record(store: TraceStore, n: int) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    rec = RunRecorder.start(store, {"task": "bench"})
    for i in range(n):
        with rec.span(f"step {i}"):
            rec.emit("model_call", ATTRS)
    rec.finish()
    return time.perf_counter() - w0, time.process_time() - c0


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=3000, help="model calls per run (each also opens a span)")
    n = ap.parse_args().events
    tmp = Path(tempfile.mkdtemp())
    out = tmp / "spans.jsonl"
    collector = subprocess.Popen([sys.executable, str(REPO / "tests" / "traces" / "otlp_collector.py"), str(out)],
                                 stdout=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{int(collector.stdout.readline())}"
    rows = []
    try:
        for label, endpoint in (("no endpoint (baseline)", None), ("live, collector up", url),
                                ("live, collector down", _dead_url())):
            os.environ.pop("LAB_OTLP_ENDPOINT", None)
            if endpoint:
                os.environ["LAB_OTLP_ENDPOINT"] = endpoint
            store = TraceStore(tmp / f"{len(rows)}.db")
            wall, cpu = _record(store, n)
            t0 = time.perf_counter()
            report = live_otlp.finish()
            flush = time.perf_counter() - t0
            rows.append((label, wall, cpu, report, flush))
            store.close()
    finally:
        collector.kill()
        collector.wait()
    events = 2 * n + 2
    base_w, base_c = rows[0][1], rows[0][2]
    print(f"{events} events per run (N={n} spans + model calls, run started/finished), one by one\n")
    print("| run | wall µs/event | CPU µs/event | wall ratio | CPU ratio | spans sent | dropped | close (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, wall, cpu, report, flush in rows:
        sent = report.sent if report else "-"
        dropped = report.dropped if report else "-"
        print(f"| {label} | {wall / events * 1e6:.0f} | {cpu / events * 1e6:.0f} | {wall / base_w:.2f} | "
              f"{cpu / base_c:.2f} | {sent} | {dropped} | {flush:.2f} |")


if __name__ == "__main__":
    main()
