"""The task model and the YAML loader: valid files load; bad ones name the file, line, task and field."""

from __future__ import annotations

import textwrap

import pytest

from lab.tasks import Scoring, Task, TaskSpecError, load_task_file, load_tasks


def _write(tmp_path, text: str, name: str = "tasks.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


GOOD = """\
suite: demo
defaults:
  kind: tools
  budgets: {steps: 5}
tasks:
  - id: one
    instructions: Say hi.
    answer: hi
    scoring: {scorer: normalized_match}
  - id: two
    instructions: Run it.
    kind: repo
    sandbox:
      image: base
      copy_in: [{src: data, dest: /work/data}]
      setup: ["echo ready"]
    resources: {cpus: 2, memory_gb: 1, network: false}
    budgets: {wall_time_s: 60}
    scoring:
      script: {command: "python3 score.py", timeout_s: 30}
      intermediate: true
      starting_score: 10
      reference_score: 2
"""


def test_good_file_loads_with_defaults_merged(tmp_path):
    tasks = load_task_file(_write(tmp_path, GOOD))
    one, two = tasks
    assert [t.key for t in tasks] == ["demo/one", "demo/two"]
    assert one.kind == "tools" and one.budgets.steps == 5
    assert two.kind == "repo" and two.budgets.steps == 5 and two.budgets.wall_time_s == 60  # deep merge
    assert two.sandbox.copy_in[0].dest == "/work/data"
    assert two.host_path("data") == (tmp_path / "data").resolve()
    assert two.scoring.normalise(10) == 0.0 and two.scoring.normalise(2) == 1.0  # lower is better
    assert two.scoring.normalise(6) == pytest.approx(0.5)


def test_single_task_file(tmp_path):
    (t,) = load_task_file(_write(tmp_path, "id: solo\ninstructions: x\nscoring: {scorer: exact_match}\n"))
    assert t.key == "solo" and t.suite is None and t.sandbox is None


@pytest.mark.parametrize("text, line, field, words", [
    # wrong type, deep in the structure: the line of the offending value
    ("tasks:\n  - id: a\n    instructions: x\n    scoring: {scorer: exact_match}\n"
     "    resources:\n      cpus: lots\n", 6, "resources.cpus", "number"),
    # unknown field (extra="forbid")
    ("tasks:\n  - id: a\n    instructions: x\n    scoring: {scorer: exact_match}\n    colour: red\n",
     5, "colour", "Extra inputs"),
    # missing field: the line where the task starts
    ("tasks:\n  - id: a\n    scoring: {scorer: exact_match}\n", 2, "instructions", "required"),
    # a model-level rule on scoring
    ("tasks:\n  - id: a\n    instructions: x\n    scoring:\n      args: {}\n", 4, "scoring", "exactly one"),
    ("tasks:\n  - id: a\n    instructions: x\n    scoring: {scorer: x, starting_score: 1}\n", 4, "scoring",
     "go together"),
])
def test_bad_field_names_field_and_line(tmp_path, text, line, field, words):
    p = _write(tmp_path, text)
    with pytest.raises(TaskSpecError) as e:
        load_task_file(p)
    msg = str(e.value)
    assert f"{p}:{line}:" in msg and f"field '{field}'" in msg and "task 'a'" in msg and words in msg


def test_error_from_defaults_points_at_defaults(tmp_path):
    p = _write(tmp_path, "defaults:\n  budgets: {steps: -1}\ntasks:\n  - id: a\n    instructions: x\n"
                         "    scoring: {scorer: exact_match}\n")
    with pytest.raises(TaskSpecError, match=rf"{p}:2: task 'a': field 'budgets.steps'"):
        load_task_file(p)


def test_invalid_yaml_names_line(tmp_path):
    p = _write(tmp_path, "tasks:\n  - id: a\n    instructions: [unclosed\n  - id: b\n")
    with pytest.raises(TaskSpecError, match=rf"{p}:\d+: invalid YAML"):
        load_task_file(p)


def test_duplicate_ids_and_unknown_top_level(tmp_path):
    dup = _write(tmp_path, "tasks:\n  - {id: a, instructions: x, scoring: {scorer: s}}\n"
                           "  - {id: a, instructions: y, scoring: {scorer: s}}\n")
    with pytest.raises(TaskSpecError, match=r":3: duplicate task id 'a' \(first at line 2\)"):
        load_task_file(dup)
    top = _write(tmp_path, "tasks: []\nsuites: x\n", "top.yaml")
    with pytest.raises(TaskSpecError, match=r"top.yaml:2: unknown top-level key"):
        load_task_file(top)


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(TaskSpecError, match="cannot read"):
        load_task_file(tmp_path / "nope.yaml")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(TaskSpecError, match="unknown task format"):
        load_tasks(tmp_path / "x.txt")


def test_scoring_model_rules():
    with pytest.raises(ValueError, match="equals"):
        Scoring(scorer="x", starting_score=1, reference_score=1)
    with pytest.raises(ValueError, match="no starting"):
        Scoring(scorer="x").normalise(1.0)
    assert Task(id="t", instructions="i", scoring=Scoring(scorer="x")).key == "t"
