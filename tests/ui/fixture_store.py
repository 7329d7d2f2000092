"""A realistic trace store for the dashboard's browser tests and the README screenshots, built through the
lab's real code paths: SUPER trajectories and a METR-style run table through their importers (human expert
runs included; each agent at several time limits), DERA and ReAct runs through the real loops and runner with
scripted models, a ReAct run in a real local sandbox, a fork, and expert and judge grades through
``lab.scoring.import_grades``.

``python -m tests.ui.fixture_store PATH`` writes one to ``PATH`` (to look at with ``lab serve dashboard``).
"""

from __future__ import annotations

import json
import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lab.traces import TraceStore

REPO = Path(__file__).resolve().parents[2]
#: Where the shared data lives (as tests/conftest.py finds it), SUPER's trajectories under it.
SHARED_DATA = Path(os.environ.get("LAB_SHARED_DATA", REPO.parent / "shared" / "data"))
METR_TABLE = REPO / "tests" / "data" / "metr_runs.jsonl"
EXPERTS = ("alice", "bob")
JUDGE = "smollm2-judge"
#: Time limits (seconds) every synthetic METR-style agent is run at.
METR_LIMITS = (1800, 7200, 28800)


@dataclass
class FixtureStore:
    """What the builder wrote, by kind (run ids)."""

    path: Path
    script: Path
    dera: list[str] = field(default_factory=list)
    react: list[str] = field(default_factory=list)
    sandbox_run: str = ""
    fork: str = ""
    super_runs: list[str] = field(default_factory=list)
    metr: list[str] = field(default_factory=list)
    no_output: list[str] = field(default_factory=list)


def _super_dir() -> Path | None:
    for root in (SHARED_DATA, REPO.parent.parent / "shared" / "data"):  # a worktree sits one level deeper
        if (root / "super" / "trajectories").is_dir():
            return root / "super" / "trajectories"
    return None


def metr_table(path: Path, *, seed: int = 0) -> Path:
    """A METR-style run table: the synthetic rows of ``tests/data/metr_runs.jsonl`` plus every agent of it at
    several time limits (three attempts each) and more human expert runs. Marked synthetic in ``note``."""
    rng = random.Random(seed)
    base = [json.loads(line) for line in METR_TABLE.read_text().splitlines() if line.strip()]
    rows = list(base)
    agents = sorted({(r["alias"], r["model"]) for r in base if r["alias"] != "human"})
    tasks = sorted({(r["task_id"], r["task_family"]) for r in base})
    n = 0
    t0 = 1_718_000_000_000
    for task, family in tasks:
        for alias, model in agents:
            for limit in METR_LIMITS:
                for _ in range(3):
                    n += 1
                    took = limit * rng.uniform(0.5, 1.0)
                    score = min(1.0, max(0.0, 0.25 + 0.1 * (limit / 7200) ** 0.5 + rng.gauss(0, 0.12)))
                    rows.append({"run_id": f"syn-x{n:04d}", "task_id": task, "task_family": family, "alias": alias,
                                 "model": model, "score": round(score, 3), "score_binarized": int(score > 0.5),
                                 "time_limit": limit, "started_at": t0, "completed_at": t0 + int(took * 1000),
                                 "human_minutes": 480.0, "scaffold": "modular",
                                 "note": "SYNTHETIC row for Expert Lab tests; not METR data"})
                    t0 += 10_000_000
        for _ in range(2):
            n += 1
            minutes = rng.uniform(120, 480)
            score = min(1.0, max(0.0, 0.55 + 0.15 * minutes / 480 + rng.gauss(0, 0.1)))
            rows.append({"run_id": f"syn-x{n:04d}", "task_id": task, "task_family": family, "alias": "human",
                         "model": "human", "score": round(score, 3), "score_binarized": int(score > 0.5),
                         "time_limit": 28800, "started_at": t0, "completed_at": t0 + int(minutes * 60_000),
                         "human_minutes": round(minutes, 1), "scaffold": None,
                         "note": "SYNTHETIC row for Expert Lab tests; not METR data"})
            t0 += 10_000_000
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def dera_model(name: str):
    """A scripted DERA pair: a first draft, a Researcher who asks once and then agrees, a Decider who revises
    in the second round (so every run has two Decider turns)."""
    from lab.models import ScriptedModel

    def reply(messages):
        system, user = messages[0].content, messages[1].content
        if system.startswith("You are the Researcher"):
            first = "Researcher:" not in user
            return {"json": {"message": "The rash and the neck stiffness point to meningococcal disease; check "
                                        "the first-line antibiotic." if first else "Agreed, the answer fits.",
                             "done": not first}}
        if "answering" in system:
            return {"json": {"answer": "Penicillin", "explanation": "first guess from the history"}}
        final = user.count("Researcher:") >= 2
        return {"json": {"message": "Revised after the Researcher's point." if not final else "Final answer.",
                         "answer": "Ceftriaxone", "final": final}}

    return ScriptedModel(reply, name=name)


def chemist_model(name: str):
    """A scripted ReAct chemist: looks the molecule up, then submits (two decimals); ``lost`` never submits."""
    from lab.models import ScriptedModel, ToolCall

    if name == "scripted-lost":
        return ScriptedModel([ToolCall("", "molecular_weight", {"molecule": "not-a-molecule"})], name=name, cycle=True)

    def submit(messages):
        try:
            return ToolCall("", "submit", {"answer": f"{float(messages[-1].content):.2f}"})
        except ValueError:
            return ToolCall("", "submit", {"answer": messages[-1].content[:80]})

    return ScriptedModel([ToolCall("", "molecular_weight", {"molecule": "aspirin"}), submit], name=name)


def _loader(name: str):
    return dera_model(name) if name.startswith("scripted-dera") else chemist_model(name)


def _sandbox_run(store: TraceStore) -> str:
    """A ReAct run in a real local sandbox: coloured tool output, a failing command, then an answer."""
    from lab.agents import ReActAgent
    from lab.models import ScriptedModel, ToolCall
    from lab.sandbox import SandboxSpec, open_sandbox
    from lab.tools import shell

    model = ScriptedModel([
        ToolCall("", "shell", {"command": "printf '\\033[1;32mPASSED\\033[0m 3 tests\\nline two\\n'"}),
        ToolCall("", "shell", {"command": "python3 -c 'import nosuchmodule'"}),
        ToolCall("", "submit", {"answer": "All 3 tests pass; the import error is in an unused module."}),
    ], name="scripted-shell")
    with open_sandbox(SandboxSpec(backend="local")) as sb:
        run = ReActAgent(model, [shell]).start(store, "Run the test suite and report what fails.",
                                               task="local/run-tests", sandbox=sb)
        run.run()
    return run.run_id


def grades_frame(store: TraceStore, run_ids: list[str], *, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Expert grades (two experts) and a judge's grades (noisier) of ``run_ids`` on two dimensions, derived
    from each run's best rule score so they correlate; returns ``(experts, judge)`` frames for
    :func:`lab.scoring.import_grades`."""
    rng = random.Random(seed)
    sf = store.scores_frame()
    rule = sf[sf["provenance"] == "rule"].groupby("run_id")["value"].max()
    experts, judge = [], []
    for rid in run_ids:
        truth = 1 + 4 * float(rule.get(rid, 0.5) if pd.notna(rule.get(rid, 0.5)) else 0.5)
        for dim in ("correctness", "clarity"):
            for e in EXPERTS:
                experts.append({"grader": e, "item": rid, "run_id": rid, "dimension": dim,
                                "value": int(min(5, max(1, round(truth + rng.gauss(0, 0.6)))))})
            judge.append({"grader": JUDGE, "item": rid, "run_id": rid, "dimension": dim,
                          "value": int(min(5, max(1, round(truth + rng.gauss(0, 1.0)))))})
    return pd.DataFrame(experts), pd.DataFrame(judge)


def build(directory: Path) -> FixtureStore:
    """Write the realistic store into ``directory`` (``traces.db``) and return what is in it. SUPER's
    trajectories are imported when the shared data is there (``$LAB_SHARED_DATA``); without it
    ``super_runs`` is empty and the rest is built as usual."""
    from lab.experiment import Experiment
    from lab.runner import Runner
    from lab.scoring import import_grades
    from lab.traces.importers.metr import import_metr
    from lab.traces.importers.super import import_super
    from widgets.fork import fork_run

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "traces.db"
    store = TraceStore(path)
    out = FixtureStore(path=path, script=directory / "script.json")
    super_dir = _super_dir()
    out.super_runs = import_super(store, super_dir) if super_dir else []
    out.metr = import_metr(store, metr_table(directory / "metr_runs.jsonl"))

    dera = Experiment.from_dict({"name": "ui-dera", "tasks": [{"suite": "medqa-open", "subset": "ci"}],
                                 "loops": ["dera"], "models": ["scripted-dera"], "seeds": [0, 1],
                                 "budgets": {"steps": 3}, "judge_fallback": False, "concurrency": 1})
    batch = Runner(store, progress=False, model_loader=_loader).run(dera)
    out.dera = [o.run_id for o in batch.outcomes if o.status == "done"]
    react = Experiment.from_dict({"name": "ui-react", "tasks": [{"suite": "chem-tools", "ids": ["mw-aspirin"]}],
                                  "loops": ["react"], "models": ["scripted-chemist", "scripted-lost"],
                                  "seeds": [0, 1], "budgets": {"steps": 3}, "concurrency": 1})
    batch = Runner(store, progress=False, model_loader=_loader).run(react)
    out.react = [o.run_id for o in batch.outcomes]
    out.no_output = [o.run_id for o in batch.outcomes if not o.answer]
    out.sandbox_run = _sandbox_run(store)

    reply = {"answer": "Ceftriaxone", "explanation": "blocks cell wall synthesis", "message": "agreed",
             "done": True, "final": True}  # one JSON reply serves every DERA role
    out.script.write_text(json.dumps({"replies": [json.dumps(reply)], "cycle": True}))
    out.fork = fork_run(store, out.dera[0], 1, model=f"scripted:{out.script}", background=False)

    graded = [*out.dera, *[r for r in out.react if r not in out.no_output], out.sandbox_run,
              *[r for r in out.super_runs if store.events(r, kinds=["tool_call"])],
              *out.super_runs[:80]]
    graded = list(dict.fromkeys(graded))
    experts, judge = grades_frame(store, graded)
    import_grades(store, experts, scorer="expert", dataset="ui-grades")
    import_grades(store, judge, scorer=f"judge:{JUDGE}", provenance="model", dataset="ui-grades")
    store.close()
    return out


if __name__ == "__main__":
    info = build(Path(sys.argv[1]))
    print(json.dumps({k: (str(v) if isinstance(v, Path) else v) for k, v in info.__dict__.items()
                      if not isinstance(v, list)} | {k: len(v) for k, v in info.__dict__.items()
                                                     if isinstance(v, list)}, indent=1))
