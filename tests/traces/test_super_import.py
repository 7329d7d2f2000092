"""SUPER trajectories: import, steps from history.ipynb, and the published metrics back out of the store."""

from __future__ import annotations

import json
import re
import shutil

import pytest

from lab.traces import TraceStore
from lab.traces.errors import StoreError, TraceImportError
from lab.traces.frames import final_score_means
from lab.traces.importers.super import import_super, parse_history

CONFIGS = ["gpt-4o-2024-08-06_react-super_expert", "gpt-4o-2024-08-06_react-super_masked",
           "gpt-4o-2024-08-06_swe-agent_expert", "gpt-4o-2024-08-06_swe-agent_masked"]
METRICS = ["submitted", "output_match", "checkpoints", "entrypoint"]
# Output match (%) the SUPER paper reports for GPT-4o, mean over tasks with a missing value counted as 0.
PUBLISHED_OUTPUT_MATCH = {"gpt-4o-2024-08-06_swe-agent_expert": 16.7, "gpt-4o-2024-08-06_swe-agent_masked": 45.2,
                          "gpt-4o-2024-08-06_react-super_masked": 41.1}


@pytest.fixture
def trajectories(shared_data):
    root = shared_data / "super" / "trajectories"
    if not root.is_dir():
        pytest.skip(f"no SUPER trajectories at {root}")
    return root


def _imported(tmp_path, root) -> TraceStore:
    store = TraceStore(tmp_path / "super.db")
    ids = import_super(store, root)
    assert len(ids) == sum(1 for _ in root.glob("*/*/metrics.json"))
    return store


def test_published_metrics_come_back_as_store_aggregates(tmp_path, trajectories):
    store = _imported(tmp_path, trajectories)
    means = final_score_means(store, by="batch_id", scorers=METRICS)
    means.index = [b.removeprefix("super:") for b in means.index]
    assert sorted(means.index) == CONFIGS
    for config, pct in PUBLISHED_OUTPUT_MATCH.items():
        assert round(100 * means.loc[config, "output_match"], 1) == pct
    for config in CONFIGS:  # every metric equals a plain mean over the published metrics.json files
        files = [json.loads(p.read_text()) for p in (trajectories / config).glob("*/metrics.json")]
        assert means.loc[config, "runs"] == len(files)
        for m in METRICS:
            assert means.loc[config, m] == pytest.approx(sum(f.get(m) or 0 for f in files) / len(files))
    scores = store.scores_frame()
    assert set(scores["provenance"]) == {"rule"} and set(scores["source"]) == {"super"}
    assert scores["final"].all()


def test_history_notebook_becomes_one_event_per_step(tmp_path, trajectories):
    task = trajectories / "gpt-4o-2024-08-06_swe-agent_masked" / "memorizing-transformers-pytorch_dependencies"
    nb_text = (task / "history.ipynb").read_text()
    store = TraceStore(tmp_path / "one.db")
    [run_id] = import_super(store, task)
    run = store.get_run(run_id)
    assert (run["task"], run["agent"], run["model"], run["status"]) == (
        "memorizing-transformers-pytorch_dependencies", "swe-agent", "gpt-4o-2024-08-06", "done")
    steps = store.events(run_id, kinds=["tool_call"])
    nb = json.loads(nb_text)
    step_cells = [c for c in nb["cells"] if "".join(c["source"]).startswith("### Step ")]
    assert [e.attrs["lab.step"] for e in steps] == list(range(1, len(step_cells) + 1))
    durations = [int(d) for d in re.findall(r"\(duration: (\d+) seconds\)", nb_text)]
    assert sum(e.attrs.get("lab.duration_s", 0) for e in steps) == sum(durations)
    pre = [e for e in steps if e.attrs["lab.pre_executed"]]
    assert pre and all(e.agent == "user" for e in pre) and steps[-1].agent == "swe-agent"
    last = steps[-1]
    assert last.attrs["gen_ai.tool.name"] == "submit" and "valid_loss" in last.attrs["lab.action"]
    assert "valid_loss" in last.attrs["lab.observation"]
    assert "einops" in steps[-3].attrs["lab.thought"]
    # elapsed: from the first timed step's start (18:32:32) to the last step's end (18:33:54)
    assert run["elapsed"] == 82.0 and steps[-1].elapsed == 82.0
    assert [e.elapsed for e in steps] == sorted(e.elapsed for e in steps)
    started = store.events(run_id, kinds=["run_started"])[0]
    assert started.attrs["lab.super.query"].startswith("Train a memorizing transformer")
    assert "autonomous programmer" in started.attrs["lab.super.system_prompt"]


def test_react_notebook_sections_and_actions(trajectories):
    traj = parse_history(trajectories / "gpt-4o-2024-08-06_react-super_masked" / "mixup-amp_custom" / "history.ipynb")
    assert set(traj.sections) == {"query", "prompt"}
    assert {s.action_type for s in traj.steps} == {"execute", "edit", "submit"}
    assert traj.steps[1].duration == 10.0 and traj.steps[1].start == 34 * 60 + 20


def test_configuration_folder_and_metrics_only_task(tmp_path, trajectories):
    config = trajectories / "gpt-4o-2024-08-06_swe-agent_expert"
    store = TraceStore(tmp_path / "cfg.db")
    ids = import_super(store, config)
    assert len(ids) == 45
    run_id = f"super-{config.name}-amos"
    kinds = [e.kind for e in store.events(run_id)]
    assert kinds == ["run_started", "score", "score", "score", "score", "run_finished"]  # no steps
    assert store.get_run(run_id)["elapsed"] is None
    with pytest.raises(StoreError, match="already exists"):
        import_super(store, config / "amos")


def test_bad_metrics_file_names_it_and_imports_nothing(tmp_path, trajectories):
    config = tmp_path / "gpt-4o-2024-08-06_swe-agent_expert"
    for task in ("amos", "acqsurvey", "cet"):
        shutil.copytree(trajectories / config.name / task, config / task)
        (config / task).chmod(0o755)
    bad = config / "cet" / "metrics.json"
    bad.chmod(0o644)
    bad.write_text('{"submitted": 1, "output_match": "yes"}')
    store = TraceStore(tmp_path / "bad.db")
    with pytest.raises(TraceImportError, match=r"cet/metrics.json: metric 'output_match' is 'yes'"):
        import_super(store, config)
    bad.write_text("{")
    with pytest.raises(TraceImportError, match=r"cet/metrics.json:1: not JSON"):
        import_super(store, config)
    assert store.list_runs() == [] and store.count_events() == 0
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(TraceImportError, match="no SUPER task folders"):
        import_super(store, tmp_path / "empty")
    with pytest.raises(TraceImportError, match="no such folder"):
        import_super(store, tmp_path / "missing")


def test_cli_import_super(tmp_path, trajectories, lab):
    r = lab("import", "super", str(trajectories / "gpt-4o-2024-08-06_react-super_masked"),
            "--store", str(tmp_path / "cli.db"))
    assert r.returncode == 0, r.stderr
    assert "imported 144 SUPER runs" in r.stdout
    r = lab("runs", "list", "--json", "--store", str(tmp_path / "cli.db"))
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 144
    assert round(100 * sum(x["scores"]["output_match"] or 0 for x in rows) / len(rows), 1) == 41.1
