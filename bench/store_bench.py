"""Trace store benchmark: ingest (batched, one-by-one durable) and reading one run into a DataFrame.

Each measurement runs our code and a baseline on the same rows in the same process, and reports wall time
and CPU time (on a shared machine, CPU time is the work itself; wall time includes waiting for the cores):
  - ingest baseline: raw ``sqlite3`` ``executemany`` into the same table (same WAL mode and synchronous
    setting, same primary key) of rows already encoded, i.e. SQLite's own cost with nothing around it;
  - one-by-one baseline: raw ``sqlite3``, one ``INSERT`` per transaction, same settings;
  - read baseline: ``pandas.read_sql`` of the same run's rows (attributes left as JSON text).

With ``--postgresql`` it compares the two backends instead, through the same ``TraceStore`` API in the same
run (SQLite is the baseline): ingest batched and one by one, building a store of ``--events`` events, and the
dashboard's first-render data (``runs_frame`` with final scores, then one 10,000-event run's ``events_frame``).
The PostgreSQL server is a throwaway cluster started for the run (``--postgresql-url`` uses an existing one).

Usage: .venv/bin/python bench/store_bench.py [--events 1000000] [--batched 200000] [--single 5000]
       .venv/bin/python bench/store_bench.py --postgresql [--events 1000000]
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

from lab.traces import Event, Score, TraceStore
from lab.traces.backend import open_trace_store
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


def build_big_store(path: Path | str, total: int, per_run: int = 10_000) -> list[str]:
    """A store of ``total`` events in runs of ``per_run`` events (written run-interleaved, like live runs),
    each run with two final scores; ``path`` is a SQLite file or a PostgreSQL URL."""
    store = open_trace_store(path)
    runs = [store.create_run({"task": f"t{i}", "agent": f"a{i % 4}"}, status="done") for i in range(total // per_run)]
    chunk = 1000
    for start in range(0, per_run, chunk):
        for run_id in runs:
            store.append_many(_events(run_id, chunk, t0=1.7e9 + start))
    for i, run_id in enumerate(runs):
        store.add_score(run_id, Score("match", i % 2))
        store.add_score(run_id, Score("expert", 3.0, provenance="human", source="ann", dimension="clarity"))
    store.close()
    return runs


def _median(clocks: list[Clock]) -> Clock:
    m = Clock()
    m.wall, m.cpu = statistics.median(c.wall for c in clocks), statistics.median(c.cpu for c in clocks)
    return m


def compare_backends(tmp: Path, pg_url: str, events: int, batched: int, single: int) -> list[tuple]:
    """The same measures on SQLite and PostgreSQL: rows of (measure, unit, sqlite clock, postgresql clock, n)."""
    from psycopg import connect

    def fresh(name: str) -> Path | str:
        if name == "sqlite":
            return tmp / f"cmp-{len(list(tmp.iterdir()))}.db"
        db = f"bench_{len(dbs)}"
        with connect(pg_url, autocommit=True) as c:
            c.execute(f"DROP DATABASE IF EXISTS {db}")
            c.execute(f"CREATE DATABASE {db}")
        dbs.append(db)
        return pg_url.rsplit("/", 1)[0] + "/" + db

    dbs: list[str] = []
    out: dict[str, dict[str, Clock]] = {"sqlite": {}, "postgresql": {}}
    reads = 5
    for name in out:
        store = open_trace_store(fresh(name))
        run_id = store.create_run({"task": "bench"})
        evs = _events(run_id, batched)
        with Clock() as out[name]["batched"]:
            for i in range(0, batched, 1000):
                store.append_many(evs[i:i + 1000])
        run_id = store.create_run({"task": "bench-single"})
        evs = _events(run_id, single)
        with Clock() as out[name]["single"]:
            for ev in evs:
                store.append(ev)
        store.close()
        # durability="full": an fsync per commit (SQLite) / synchronous_commit on (PostgreSQL)
        store = open_trace_store(fresh(name), durability="full")
        run_id = store.create_run({"task": "bench-single"})
        evs = _events(run_id, single)
        with Clock() as out[name]["single_full"]:
            for ev in evs:
                store.append(ev)
        store.close()
        big = fresh(name)
        with Clock() as out[name]["build"]:
            runs = build_big_store(big, events)
        store = open_trace_store(big, readonly=True)
        frames, runs_frames, first = [], [], []
        for _ in range(reads):
            with Clock() as c:
                df = store.runs_frame()
                store.events_frame(runs[len(runs) // 2])
            first.append(c)
            with Clock() as c:
                df = store.runs_frame()
            runs_frames.append(c)
            with Clock() as c:
                n = len(store.events_frame(runs[len(runs) // 2]))
            frames.append(c)
        assert len(df) == len(runs) and "score.match" in df and n == 10_002  # and its two score events
        out[name]["runs_frame"], out[name]["events_frame"] = _median(runs_frames), _median(frames)
        out[name]["first"] = _median(first)
        store.close()
    s, p = out["sqlite"], out["postgresql"]
    return [
        ("ingest batched, 1000 per transaction", "rate", s["batched"], p["batched"], batched),
        ("ingest one by one (durability normal: survives the writer's kill -9)", "rate", s["single"], p["single"],
         single),
        ("ingest one by one, durability full (an fsync per commit)", "rate", s["single_full"], p["single_full"],
         single),
        (f"build a {events:,}-event store ({events // 10_000} runs interleaved, batches of 1000)", "rate",
         s["build"], p["build"], events),
        (f"runs_frame with final scores ({events // 10_000} runs)", "secs", s["runs_frame"], p["runs_frame"], 0),
        ("events_frame of one 10,000-event run", "secs", s["events_frame"], p["events_frame"], 0),
        ("dashboard first render data (both of the above)", "secs", s["first"], p["first"], 0),
    ]


def main_compare(args: argparse.Namespace) -> None:
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as d:
        if args.postgresql_url:
            rows = compare_backends(Path(d), args.postgresql_url, args.events, args.batched, args.single)
        else:
            from lab.traces.pg_server import PostgresCluster

            with PostgresCluster() as cluster:
                rows = compare_backends(Path(d), cluster.url, args.events, args.batched, args.single)
    load = max(load, os.getloadavg()[0])
    print(f"{os.cpu_count()} CPUs, load average up to {load:.1f} while measuring; PostgreSQL on this machine "
          "(loopback TCP); SQLite is the baseline\n")
    print("| measure | SQLite (wall) | PostgreSQL (wall) | SQLite (CPU) | PostgreSQL (CPU) | ratio wall PG/SQLite "
          "| ratio CPU PG/SQLite |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, unit, s, p, n in rows:
        cells = ([*_rate(n, s)[:1], *_rate(n, p)[:1], *_rate(n, s)[1:], *_rate(n, p)[1:]] if unit == "rate" else
                 [*_secs(s)[:1], *_secs(p)[:1], *_secs(s)[1:], *_secs(p)[1:]])
        print(f"| {name} | {' | '.join(cells)} | {p.wall / s.wall:.2f} | {p.cpu / s.cpu:.2f} |")


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
    ap.add_argument("--postgresql", action="store_true", help="compare SQLite with PostgreSQL instead")
    ap.add_argument("--postgresql-url", help="an existing PostgreSQL server (a database there is created per measure)")
    args = ap.parse_args()
    if args.postgresql or args.postgresql_url:
        main_compare(args)
        return
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
