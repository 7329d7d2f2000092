"""Dashboard benchmark: a store of 1,000 runs and ~1,000,000 events.

Measures, server side (building the Bokeh models a browser would receive), each against loading the same
data with a plain pandas query in the same run:

- dashboard first render (targets ≤ 2 s) vs ``pd.read_sql`` of the runs and their final scores;
- opening a 5,000-event trace (≤ 1 s) vs ``pd.read_sql`` of that run's events;
- filtering the runs table (≤ 200 ms) vs the same filter as a pandas ``query`` on the loaded frame.

Usage: ``.venv/bin/python bench/dashboard_bench.py [--runs 1000] [--events 1000000] [--repeat 5]``.
The store is built once and kept under ``$TMPDIR/lab-dashboard-bench`` (``--rebuild`` makes it again).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import panel as pn
from bokeh.document import Document

from lab.traces import Event, TraceStore
from widgets import Dashboard, TraceViewer
from widgets.sample import sample_study

BIG = 5000


def build_store(path: Path, runs: int, events: int) -> tuple[TraceStore, str]:
    """The sample study scaled to ``runs`` runs and ``events`` events, plus one run of 5,000 events."""
    per_task = 2 * 4 + 2  # two loops x four seeds, two experts
    tasks = max(1, runs // per_task)
    store = TraceStore(path)
    if store.count_events() == 0:
        per_run = max(10, (events - BIG) // (tasks * per_task))
        t = time.perf_counter()
        sample_study(store, tasks=tasks, seeds=4, experts=("alice", "bob"), events_per_run=per_run)
        big = store.create_run({"task": "sample/big", "agent": "react", "model": "smollm2"}, status="done")
        store.append_many([Event(big, "tool_result", {"content": f"output line {i}\n" * (1 + i % 5)},
                                 elapsed=i * 0.1, agent="react") for i in range(BIG)])
        print(f"built {path} in {time.perf_counter() - t:.0f}s", file=sys.stderr)
    big = store.query("SELECT run_id FROM runs WHERE task='sample/big'")[0][0]
    return store, big


def timed(fn, repeat: int) -> float:
    """Median wall time of ``fn()`` over ``repeat`` calls (seconds)."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--rebuild", action="store_true")
    args = ap.parse_args()
    path = Path(tempfile.gettempdir()) / "lab-dashboard-bench" / f"store-{args.runs}-{args.events}.db"
    path.parent.mkdir(exist_ok=True)
    if args.rebuild:
        for p in path.parent.glob(path.name + "*"):
            p.unlink()
    store, big = build_store(path, args.runs, args.events)
    n_runs, n_events = store.query("SELECT COUNT(*) FROM runs")[0][0], store.count_events()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    pn.extension("tabulator", "vega")

    def render_dashboard() -> None:
        Dashboard(store).panel().get_root(Document())

    def pandas_runs() -> None:
        runs = pd.read_sql_query("SELECT * FROM runs", conn)
        scores = pd.read_sql_query("SELECT run_id, scorer, dimension, value FROM scores WHERE final=1", conn)
        scores["column"] = scores["scorer"] + "." + scores["dimension"]
        runs.merge(scores.pivot_table(index="run_id", columns="column", values="value", aggfunc="last"),
                   left_on="run_id", right_index=True, how="left")

    viewer = TraceViewer(store)

    def open_trace() -> None:
        viewer.run_id = ""
        viewer.run_id = big
        pn.Column(viewer.header(), viewer.steps_view()).get_root(Document())

    def pandas_trace() -> None:
        pd.read_sql_query("SELECT * FROM events WHERE run_id=? ORDER BY seq", conn, params=(big,))

    dash = Dashboard(store)
    dash.panel().get_root(Document())  # the table is live, as in a browser session
    table = dash.runs
    tasks = table.param.tasks.objects
    choices = [tasks[: len(tasks) // 2], tasks[len(tasks) // 3:], []]
    state = {"i": 0}

    def filter_table() -> None:
        state["i"] += 1
        table.param.update(tasks=choices[state["i"] % 3], who=("all", "AI", "human")[state["i"] % 3])

    frame = table.frame

    def pandas_filter() -> None:
        state["i"] += 1
        chosen, who = choices[state["i"] % 3], ("all", "AI", "human")[state["i"] % 3]
        df = frame.query("task in @chosen") if chosen else frame
        if who != "all":
            df = df.query("who == @who")
        df.reset_index(drop=True)

    rows = []
    for name, ours, base, target in (
        ("dashboard first render", render_dashboard, pandas_runs, 2.0),
        (f"open a {BIG:,}-event trace", open_trace, pandas_trace, 1.0),
        ("filter the runs table", filter_table, pandas_filter, 0.2),
    ):
        t_ours, t_base = timed(ours, args.repeat), timed(base, args.repeat)
        rows.append((name, t_ours, t_base, target))
    print(f"store: {n_runs:,} runs, {n_events:,} events ({path.stat().st_size / 1e6:.0f} MB); "
          f"median of {args.repeat}")
    print(f"| {'operation':<28} | {'widgets (s)':>11} | {'pandas (s)':>10} | {'ratio':>6} | {'target (s)':>10} | ok |")
    print(f"|{'-' * 30}|{'-' * 13}|{'-' * 12}|{'-' * 8}|{'-' * 12}|----|")
    for name, t_ours, t_base, target in rows:
        print(f"| {name:<28} | {t_ours:11.3f} | {t_base:10.3f} | {t_ours / t_base:6.1f} | {target:10.2f} | "
              f"{'yes' if t_ours <= target else 'NO':<2} |")


if __name__ == "__main__":
    main()
