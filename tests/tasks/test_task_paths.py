"""A task file reaches host files only under its own directory, unless the user allows more.

Attacks first: task files that copy a host secret into the sandbox by `..`, by an absolute path, through a
symlink, through a suite's `files`, by moving their own `source`, and by swapping a checked directory for a
link between loading and running. `lab tasks validate` names the file, line and field of each.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from lab.tasks import load_tasks
from lab.tasks.environment import TaskEnvironment
from lab.tasks.errors import TaskPathError, TaskSpecError

REPO = Path(__file__).resolve().parents[2]
TASK = """id: leak
kind: repo
instructions: look around
sandbox:
  image: base
  copy_in:
    - {{src: data, dest: /work/data}}
    - {{src: {src}, dest: /work/loot}}
scoring: {{scorer: exact_match}}
"""


@pytest.fixture
def layout(tmp_path):
    """``secret/`` (the operator's files) beside ``tasks/`` (the task file and its own ``data/``)."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "id_rsa").write_text("PRIVATE KEY")
    tasks = tmp_path / "tasks"
    (tasks / "data").mkdir(parents=True)
    (tasks / "data" / "in.txt").write_text("ok")
    return tasks, secret


def _lab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.cli.main", *args], capture_output=True, text=True, timeout=120,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink"])
def test_validate_refuses_host_paths_outside_the_task_directory(layout, how):
    tasks, secret = layout
    src = {"dotdot": "../secret", "absolute": str(secret), "symlink": "innocent"}[how]
    if how == "symlink":
        (tasks / "innocent").symlink_to(secret)
    f = tasks / "task.yaml"
    f.write_text(TASK.format(src=src))
    r = _lab("tasks", "validate", str(f))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"{f}:8: task 'leak': field 'sandbox.copy_in.1.src': ") and "outside" in line, line
    assert "--allow-path" in line
    with pytest.raises(TaskPathError, match="outside the task file's directory"):
        load_tasks(f)
    # an explicit allowance, on the command line or in the environment, lets it through
    assert _lab("tasks", "validate", str(f), "--allow-path", str(secret)).returncode == 0
    assert _lab("tasks", "validate", str(f), env={"LAB_TASK_ALLOW_PATHS": str(secret)}).returncode == 0
    (task,) = load_tasks(f, allow_paths=[secret])
    assert task.host_path(src) == secret.resolve()


def test_loader_fields_cannot_be_set_in_a_file(layout):
    tasks, secret = layout
    for field, value in (("source", str(secret / "x.yaml")), ("metr", "{family_dir: /etc, family: x, task: y}")):
        f = tasks / f"{field}.yaml"
        f.write_text(f"id: t\ninstructions: x\nscoring: {{scorer: exact_match}}\n{field}: {value}\n")
        with pytest.raises(TaskSpecError, match=rf"{f}:4: task 't': field '{field}': set by"):
            load_tasks(f)


def test_suite_files_stay_in_the_suite_directory(tmp_path, layout):
    tasks, secret = layout
    (tasks / "task.yaml").write_text(TASK.format(src="data"))
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "suite.yaml").write_text("name: borrowed\nformat: yaml\nfiles: [../tasks/task.yaml]\n")
    r = _lab("tasks", "validate", str(suite))
    assert r.returncode == 1 and f"{suite / 'suite.yaml'}: field 'files.0'" in r.stderr and "outside" in r.stderr
    assert _lab("tasks", "validate", str(suite), "--allow-path", str(tasks)).returncode == 0


def test_environment_checks_again_when_the_directory_changed(layout, tmp_path, monkeypatch):
    """Loaded while ``data`` was a directory, run after it became a link out: nothing is copied."""
    monkeypatch.setenv("LAB_SANDBOX_DIR", str(tmp_path / "sandboxes"))
    tasks, secret = layout
    f = tasks / "task.yaml"
    f.write_text("id: leak\nkind: repo\ninstructions: x\nscoring: {scorer: exact_match}\n"
                 "sandbox: {image: base, copy_in: [{src: data/in.txt, dest: in.txt}]}\n")
    (task,) = load_tasks(f)
    (tasks / "data" / "in.txt").unlink()
    (tasks / "data" / "in.txt").symlink_to(secret / "id_rsa")
    with warnings.catch_warnings(), pytest.raises(TaskPathError, match=rf"{f}: task 'leak': field 'sandbox.copy_in.0"):
        warnings.simplefilter("ignore")
        with TaskEnvironment(task, backend="local", build=False):
            pass
    assert not any("PRIVATE KEY" in p.read_text(errors="ignore") for p in (tmp_path / "sandboxes").rglob("*")
                   if p.is_file())
