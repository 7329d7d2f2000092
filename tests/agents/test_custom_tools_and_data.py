"""An experiment with a custom tool (named by import path) and tasks from a data file, without writing a suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.experiment import Experiment, ExperimentError
from lab.preflight import check_experiment
from lab.tasks.dataset_tasks import FieldMap, load_dataset_tasks

LAB = str(Path(sys.executable).parent / "lab")
ROOT = Path(__file__).resolve().parents[2]

TOOL_MODULE = '''
MASSES = {"CCO": 46.07, "O": 18.02}


def molar_mass(smiles: str) -> float:
    """Molar mass of a molecule in g/mol.

    Args:
        smiles: The molecule as SMILES.
    """
    return MASSES[smiles]
'''

ROWS = [{"qid": "ethanol", "question": "Molar mass of CCO?", "gold": "46.07", "source": "a"},
        {"qid": "water", "question": "Molar mass of O?", "gold": "18.02", "source": "b"}]


def _write(tmp_path: Path, *, module_dir: str | None) -> Path:
    where = tmp_path / module_dir if module_dir else tmp_path
    where.mkdir(exist_ok=True)
    (where / "chemtools.py").write_text(TOOL_MODULE)
    (tmp_path / "questions.csv").write_text(
        "qid,question,gold,source\n" + "".join(f"{r['qid']},{r['question']},{r['gold']},{r['source']}\n"
                                              for r in ROWS))
    (tmp_path / "script.json").write_text(json.dumps({"cycle": True, "replies": [
        {"tool_calls": [{"name": "molar_mass", "arguments": {"smiles": "CCO"}}]},
        {"tool_calls": [{"name": "submit", "arguments": {"answer": "46.07"}}]}]}))
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        "name: custom\n"
        + (f"python_path: [{module_dir}]\n" if module_dir else "")
        + "tasks:\n  - data: questions.csv\n"
          "    fields: {prompt: question, answer: gold, id: qid, metadata: [source]}\n"
          "    tools: ['chemtools:molar_mass']\n"
          f"loops: [react]\nmodels: ['scripted:{tmp_path / 'script.json'}']\n")
    return exp


@pytest.mark.parametrize("module_dir", [None, "lib"])
def test_custom_tool_and_csv_tasks_run_end_to_end(tmp_path, module_dir):
    exp = _write(tmp_path, module_dir=module_dir)
    store = tmp_path / "traces.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    p = subprocess.run([LAB, "run", str(exp), "--store", str(store), "--no-progress"], capture_output=True,
                       text=True, timeout=300, env=env, cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    from lab.traces import TraceStore

    st = TraceStore(store)
    runs = {r["task"]: r for r in st.list_runs()}
    assert set(runs) == {"ethanol", "water"} and all(r["status"] == "done" for r in runs.values())
    for r in runs.values():  # the custom tool ran in each run and its result went back to the model
        results = [e.attrs["content"] for e in st.events(r["run_id"], kinds=["tool_result"])]
        assert results[0] == "46.07"
    assert st.final_scores(runs["ethanol"]["run_id"])["normalized_match"] == 1.0
    assert st.final_scores(runs["water"]["run_id"])["normalized_match"] == 0.0


def test_a_module_outside_the_path_does_not_import(tmp_path):
    exp_path = _write(tmp_path, module_dir="lib")
    exp_path.write_text(exp_path.read_text().replace("python_path: [lib]\n", ""))
    with pytest.raises(ExperimentError, match="field 'tasks.0': task 'ethanol': tool 'chemtools:molar_mass': "
                                              "cannot import 'chemtools'"):
        check_experiment(Experiment.from_yaml(exp_path), models=False)


def test_python_path_is_confined_to_the_experiment_directory(tmp_path):
    (tmp_path / "exp").mkdir()
    exp = Experiment.from_dict({"name": "x", "tasks": ["chem-tools/q01"], "loops": ["react"], "models": ["m"],
                                "python_path": [".."]}, source="e.yaml")
    exp._base_dir = tmp_path / "exp"
    with pytest.raises(ExperimentError, match="field 'python_path.0'.*outside the experiment's directory"):
        exp.import_dirs()


@pytest.mark.parametrize("fmt", ["jsonl", "parquet", "saved"])
def test_jsonl_parquet_and_saved_datasets_load_the_same_tasks(tmp_path, fmt):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(ROWS)
    path = tmp_path / f"q.{fmt}"
    if fmt == "jsonl":
        ds.to_json(str(path))
    elif fmt == "parquet":
        ds.to_parquet(str(path))
    else:
        datasets.DatasetDict({"test": ds}).save_to_disk(str(path))
    tasks = load_dataset_tasks(path, FieldMap(prompt="question", answer="gold", id="qid", metadata=["source"]),
                               split="test" if fmt == "saved" else None, tools=["chemtools:molar_mass"])
    assert [(t.id, t.instructions, t.answer, t.metadata, t.kind) for t in tasks] == [
        (r["qid"], r["question"], r["gold"], {"source": r["source"]}, "tools") for r in ROWS]


def test_empty_prompt_and_repeated_ids_name_the_row(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text("qid,question\na,hello\nb,\n")
    with pytest.raises(Exception, match=r"q.csv: row 2 \(id 'b'\): fields.prompt \('question'\)"):
        load_dataset_tasks(path, FieldMap(prompt="question", id="qid"))
    path.write_text("qid,question\na,hello\na,again\n")
    with pytest.raises(Exception, match=r"q.csv: row 2 \(id 'a'\): id repeats"):
        load_dataset_tasks(path, FieldMap(prompt="question", id="qid"))
