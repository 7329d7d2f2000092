"""Trace store benchmark: ingest (batched, one-by-one durable) and reading one run into a DataFrame.

Each measurement runs our code and a baseline on the same rows in the same process, and reports wall time
and CPU time (on a shared machine, CPU time is the work itself; wall time includes waiting for the cores):
  - ingest baseline: raw ``sqlite3`` ``executemany`` into the same table (same WAL mode and synchronous
    setting, same primary key) of rows already encoded, i.e. SQLite's own cost with nothing around it;
  - one-by-one baseline: raw ``sqlite3``, one ``INSERT`` per transaction, same settings;
  - read baseline: ``pandas.read_sql`` of the same run's rows (attributes left as JSON text).

Usage: .venv/bin/python bench/store_bench.py [--events 1000000] [--batched 200000] [--single 5000]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from lab.traces import Event, TraceStore
from lab.traces.store import dumps

TARGETS = {"batched": 50_000, "single": 2_000, "read_s": 0.2, "ratio": 2.0}


class Clock:
    """Wall and CPU seconds of a block (CPU time shows the work when other processes share the cores)."""

    def __enter__(self) -> Clock:
        self._w, self._c = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self._w, time.process_time() - self._c


def _attrs(i: int) -> dict:
    return {"gen_ai.request.model": "smollm2", "gen_ai.usage.input_tokens": 100 + i % 50,
            "gen_ai.usage.output_tokens": 20 + i % 7, "lab.latency_s": 0.0123,
            "content": f"step {i}: the decider weighs the researcher's notes and revises the draft answer."}


def _events(run_id: str, n: int, t0: float = 1.7e9) -> list[Event]:
    return [Event(run_id, "model_call", _attrs(i), ts=t0 + i * 0.01, elapsed=i * 0.01, span_id=f"{i:016x}",
                  agent="decider") for i in range(n)]


def _raw_conn(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE events (run_id TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL,"
                 " elapsed REAL NOT NULL, kind TEXT NOT NULL, span_id TEXT, parent_id TEXT, agent TEXT,"
                 " attrs TEXT NOT NULL, PRIMARY KEY (run_id, seq)) WITHOUT ROWID")
    return conn


def _rows(events: list[Event]) -> list[tuple]:
    return [(e.run_id, i, e.ts, e.elapsed, e.kind, e.span_id, e.parent_id, e.agent, dumps(e.attrs))
            for i, e in enumerate(events)]


def bench_batched(tmp: Path, n: int, batch: int = 1000) -> tuple[Clock, Clock]:
    """``n`` events in batches of ``batch``: (ours, raw executemany)."""
    store = TraceStore(tmp / "batched.db")
    run_id = store.create_run({"task": "bench"})
    events = _events(run_id, n)
    with Clock() as ours:
        for i in range(0, n, batch):
            store.append_many(events[i:i + batch])
    store.close()
    rows = _rows(_events(run_id, n))
    conn = _raw_conn(tmp / "raw_batched.db")
    with Clock() as raw:
        for i in range(0, n, batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", rows[i:i + batch])
            conn.execute("COMMIT")
    conn.close()
    return ours, raw


def bench_single(tmp: Path, n: int, durability: str = "normal") -> tuple[Clock, Clock]:
    """``n`` events appended one per transaction: (ours, raw sqlite3)."""
    store = TraceStore(tmp / f"single_{durability}.db", durability=durability)
    run_id = store.create_run({"task": "bench"})
    events = _events(run_id, n)
    with Clock() as ours:
        for ev in events:
            store.append(ev)
    store.close()
    rows = _rows(_events(run_id, n))
    conn = _raw_conn(tmp / f"raw_single_{durability}.db")
    conn.execute(f"PRAGMA synchronous={durability.upper()}")
    with Clock() as raw:
        for row in rows:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", row)
            conn.execute("COMMIT")
    conn.close()
    return ours, raw


def build_big_store(path: Path, total: int, per_run: int = 10_000) -> list[str]:
    """A store of ``total`` events in runs of ``per_run`` events (written run-interleaved, like live runs)."""
    store = TraceStore(path)
    runs = [store.create_run({"task": f"t{i}"}, status="done") for i in range(total // per_run)]
    chunk = 1000
    for start in range(0, per_run, chunk):
        for run_id in runs:
            store.append_many(_events(run_id, chunk, t0=1.7e9 + start))
    store.close()
    return runs


def bench_read(path: Path, run_id: str, repeat: int = 7) -> tuple[Clock, Clock, Clock, int]:
    """Median of ``repeat`` reads of one run's events into a DataFrame: (ours, ours expanded, pandas.read_sql, rows)."""
    store = TraceStore(path, readonly=True)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    sql = ("SELECT run_id, seq, ts, elapsed, kind, span_id, parent_id, agent, attrs FROM events"
           " WHERE run_id=? ORDER BY seq")
    runs: dict[str, list[Clock]] = {"ours": [], "expanded": [], "base": []}
    n = 0
    for _ in range(repeat):
        with Clock() as c:
            n = len(store.events_frame(run_id))
        runs["ours"].append(c)
        with Clock() as c:
            store.events_frame(run_id, expand=True)
        runs["expanded"].append(c)
        with Clock() as c:
            pd.read_sql(sql, conn, params=(run_id,))
        runs["base"].append(c)
    conn.close()
    store.close()

    def median(clocks: list[Clock]) -> Clock:
        m = Clock()
        m.wall, m.cpu = statistics.median(c.wall for c in clocks), statistics.median(c.cpu for c in clocks)
        return m

    return median(runs["ours"]), median(runs["expanded"]), median(runs["base"]), n


def _rate(n: int, c: Clock) -> tuple[str, str]:
    return f"{n / c.wall:,.0f}/s", f"{n / c.cpu:,.0f}/s"


def _secs(c: Clock) -> tuple[str, str]:
    return f"{c.wall:.3f} s", f"{c.cpu:.3f} s"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="events in the store read from")
    ap.add_argument("--batched", type=int, default=200_000, help="events for the batched ingest")
    ap.add_argument("--single", type=int, default=5_000, help="events for one-by-one ingest")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ours, raw = bench_batched(tmp, args.batched)
        rows.append(("ingest batched, 1000 per transaction", *_rate(args.batched, ours), *_rate(args.batched, raw),
                     ours, raw, f">= {TARGETS['batched']:,}/s, <= {TARGETS['ratio']}x"))
        for durability in ("normal", "full"):
            ours, raw = bench_single(tmp, args.single, durability)
            target = f">= {TARGETS['single']:,}/s, <= {TARGETS['ratio']}x" if durability == "normal" else "(info)"
            rows.append((f"ingest one by one, synchronous={durability.upper()}", *_rate(args.single, ours),
                         *_rate(args.single, raw), ours, raw, target))
        with Clock() as build:
            runs = build_big_store(tmp / "big.db", args.events)
        ours, expanded, base, n = bench_read(tmp / "big.db", runs[len(runs) // 2])
        rows.append((f"read one run ({n:,} events) of {args.events:,} into a DataFrame", *_secs(ours), *_secs(base),
                     ours, base, f"<= {TARGETS['read_s']} s"))
        rows.append(("  same, attributes expanded into columns", *_secs(expanded), *_secs(base), expanded, base,
                     "(info)"))
    load = max(load, os.getloadavg()[0])
    print(f"{os.cpu_count()} CPUs, load average up to {load:.1f} while measuring; the store of {args.events:,} "
          f"events was built in {build.wall:.1f} s ({args.events / build.wall:,.0f} events/s)\n")
    print("| measure | ours (wall) | ours (CPU) | baseline (wall) | baseline (CPU) | ratio wall | ratio CPU | target |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for name, ow, oc, bw, bc, o, b, target in rows:
        print(f"| {name} | {ow} | {oc} | {bw} | {bc} | {o.wall / b.wall:.2f} | {o.cpu / b.cpu:.2f} | {target} |")


if __name__ == "__main__":
    main()
