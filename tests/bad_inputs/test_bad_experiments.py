"""Malformed experiment files given to ``lab run``: each gets one clear line naming the file and the field
(or line), a non-zero exit, no traceback, and no store written; all before any run starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.experiment import Experiment, ExperimentError
from lab.preflight import check_experiment

HERE = Path(__file__).parent / "experiments"

# file -> fragments the one error line must contain (besides the file's path)
EXPECTED = {
    "unknown_loop.yaml": ["field 'loops.0.loop'", "unknown loop 'deera'", "dera"],
    "misspelled_scorer.yaml": ["field 'scorers.0'", "unknown scorer 'exact_mach'", "exact_match"],
    "scorer_bad_args.yaml": ["field 'scorers.0'", "scorer 'numeric': bad arguments ['tolerance']"],
    "unknown_model_prefix.yaml": ["field 'models.0'", "unknown model name 'opnai:"],
    "missing_model_dir.yaml": ["field 'models.1'", "no such file or directory /no/such/model/dir"],
    "unknown_researcher_model.yaml": ["field 'loops.0.options'", "unknown model name 'gpt-5'"],
    "negative_seed.yaml": ["field 'seeds.0'", "greater than or equal to 0"],
    "seed_not_a_number.yaml": ["field 'seeds.0'", "valid integer"],
    "repeated_seeds.yaml": ["field 'seeds'", "seeds repeat"],
    "models_not_a_list.yaml": ["field 'models'", "valid list"],
    "negative_budget.yaml": ["field 'budgets.steps'", "greater than 0"],
    "zero_concurrency.yaml": ["field 'concurrency'", "greater than 0"],
    "unknown_field.yaml": ["field 'modles'", "Extra inputs are not permitted"],
    "unknown_sandbox_backend.yaml": ["field 'sandbox_backend'", "unknown sandbox backend 'podman'"],
    "unknown_tool.yaml": ["field 'loops.0.options'", "unknown tool(s) ['shel']"],
    "bad_loop_option.yaml": ["field 'loops.0'", "bad options ['temprature']"],
    "missing_tasks.yaml": ["field 'tasks'", "Field required"],
    "unknown_task_suite.yaml": ["field 'tasks.0'", "no-such-suite"],
    "unknown_task_id.yaml": ["field 'tasks.0'", "['no-such-task'] not found in chem-tools"],
    "task_without_suite_or_path.yaml": ["field 'tasks.0'", "exactly one of 'suite', 'path' or 'data'"],
    "data_missing_column.yaml": ["field 'tasks.0'", "questions.csv: fields.prompt: no column 'quesiton'; "
                                 "columns: qid, question, gold"],
    "data_outside_directory.yaml": ["field 'tasks.0'", "outside the experiment's directory", "LAB_TASK_ALLOW_PATHS"],
    "data_without_fields.yaml": ["field 'tasks.0'", "'data' needs 'fields'"],
    "data_unknown_format.yaml": ["field 'tasks.0'", "broken_tools.py: unknown data format '.py'"],
    "tool_module_missing.yaml": ["field 'tasks.0'", "task 'q1'", "cannot import 'no_such_tools_module'"],
    "tool_syntax_error.yaml": ["field 'loops.0.options'", "SyntaxError", "broken_tools.py, line 7"],
    "tool_without_type_hints.yaml": ["field 'tasks.0'", "parameter 'a' needs a type hint"],
    "tool_attribute_missing.yaml": ["field 'tasks.0'", "untyped_tools.py has no 'subtract'"],
    "missing_task_file.yaml": ["field 'tasks.0'", "no_such_tasks.yaml"],
    "latin1_not_utf8.yaml": [":1: not UTF-8 text (byte 0xe9 at offset 9)"],
    "empty.yaml": ["empty experiment file"],
    "list_not_mapping.yaml": ["an experiment is a mapping"],
    "invalid_yaml.yaml": [":3: invalid YAML"],
    "alias_bomb.yaml": ["aliases are expanded (an alias bomb?)"],
    "deep_nesting.yaml": ["nested more than 64 levels deep"],
}


def test_every_file_has_an_expectation():
    assert sorted(p.name for p in HERE.glob("*.yaml")) == sorted(EXPECTED)


def _lab_run(path: Path, store: Path, capsys, monkeypatch) -> tuple[int, str]:
    """``lab run PATH --store STORE`` in this process, through the CLI's own entry point."""
    from lab.cli.main import main

    monkeypatch.setattr(sys, "argv", ["lab", "run", str(path), "--store", str(store), "--no-progress"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_experiment_gets_one_clear_line(name, tmp_path, capsys, monkeypatch):
    path = HERE / name
    store = tmp_path / "traces.db"
    code, err = _lab_run(path, store, capsys, monkeypatch)
    lines = err.strip().splitlines()
    assert code != 0
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("error: ") and str(path) in line
    assert "Traceback" not in err and "--debug" not in line  # a lab error, not an unexpected exception
    for fragment in EXPECTED[name]:
        assert fragment in line, line
    assert not store.exists(), "a bad experiment must write nothing"


@pytest.mark.parametrize("name", ["misspelled_scorer.yaml", "alias_bomb.yaml"])
def test_bad_experiment_through_the_installed_command(name, tmp_path):
    """A real ``lab`` process (the console script's entry point): exit 2, one line on stderr, no store."""
    store = tmp_path / "traces.db"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run([sys.executable, "-c", "from lab.cli.main import main; main()", "run", str(HERE / name), "--store", str(store)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert EXPECTED[name][-1] in proc.stderr and not store.exists()


def test_runner_checks_before_the_first_run(tmp_path):
    """Through the Python API too, a misspelled scorer is found before anything is recorded."""
    from lab.runner import Runner
    from lab.traces import TraceStore

    exp = Experiment.from_yaml(HERE / "misspelled_scorer.yaml")
    with TraceStore(tmp_path / "s.db") as store:
        with pytest.raises(ExperimentError, match="unknown scorer 'exact_mach'"):
            Runner(store, progress=False).run(exp)
        assert store.list_runs() == []


def test_a_good_experiment_passes_the_checks():
    text = (HERE / "misspelled_scorer.yaml").read_text().replace("exact_mach", "exact_match")
    exp = Experiment.from_dict(__import__("yaml").safe_load(text), source="good.yaml")
    tasks = check_experiment(exp)
    assert len(tasks) == 1 and tasks[0].suite == "chem-tools"
