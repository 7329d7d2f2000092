"""``lab tasks list|show|validate``, task checks (unknown scorer, missing image), script scoring and setup
failures that name the task."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lab.tasks import TaskError, TaskScoringError, check_task, list_suites, load_task_file, score_task
from lab.tasks.environment import TaskEnvironment

LAB = [sys.executable, "-m", "lab.cli.main"]


def _lab(*args):
    """Run ``lab ARGS`` in-process (the real typer app); exceptions stay on the result."""
    from typer.testing import CliRunner

    from lab.cli.main import app

    return CliRunner().invoke(app, list(args))


def test_list_shows_every_bundled_suite():
    r = _lab("tasks", "list", "--json")
    assert r.exit_code == 0, r.output
    rows = {json.loads(line)["suite"]: json.loads(line) for line in r.stdout.splitlines()}
    assert set(rows) >= {"medqa-open", "chem-tools", "repo-setup", "rd-optimise"}
    assert rows["medqa-open"]["tasks"] == 2545 and rows["chem-tools"]["tasks"] >= 20
    assert rows["repo-setup"]["tasks"] >= 6 and rows["rd-optimise"]["tasks"] >= 6
    for s in list_suites():
        assert s.readme is not None and "Licence" in s.readme.read_text(), s.name
    r = _lab("tasks", "list", "chem-tools", "--ci")
    assert r.exit_code == 0 and r.stdout.count("chem-tools/") == 3


def test_show_prints_one_task():
    r = _lab("tasks", "show", "repo-setup/tinyclf-pinned-version", "--json")
    task = json.loads(r.stdout)
    assert task["kind"] == "repo" and task["answer"] == {"accuracy": 0.975}
    r = _lab("tasks", "show", "chem-tools/nope")
    assert isinstance(r.exception, TaskError) and "no task 'nope' in suite 'chem-tools'" in str(r.exception)


BAD_SCORER = "tasks:\n  - id: a\n    instructions: x\n    scoring: {scorer: no_such_scorer}\n"
NO_IMAGE = ("tasks:\n  - id: b\n    kind: repo\n    instructions: x\n    sandbox: {image: no-such-image}\n"
            "    scoring: {scorer: exact_match}\n")


def test_checks_name_the_task(tmp_path):
    (a,) = load_task_file(_write(tmp_path / "a.yaml", BAD_SCORER))
    (b,) = load_task_file(_write(tmp_path / "b.yaml", NO_IMAGE))
    assert any("task 'a'" in p and "unknown scorer 'no_such_scorer'" in p for p in check_task(a))
    assert any("task 'b'" in p and "sandbox image 'no-such-image' is not defined" in p for p in check_task(b))
    with pytest.raises(TaskScoringError, match="task 'a': unknown scorer"):
        score_task(a, "x")


def test_validate_cli_reports_problems_and_bad_files(tmp_path):
    bad = _write(tmp_path / "bad.yaml", BAD_SCORER)
    broken = _write(tmp_path / "broken.yaml", "tasks:\n  - id: c\n    instructions: [x\n")
    r = subprocess.run([*LAB, "tasks", "validate", str(bad), str(broken), "chem-tools"], capture_output=True,
                       text=True, timeout=300)   # the real command line: exit status and stderr
    assert r.returncode == 1
    assert "task 'a': unknown scorer 'no_such_scorer'" in r.stderr
    assert f"{broken}:" in r.stderr and "invalid YAML" in r.stderr
    assert "27 task(s) checked, 2 problem(s)" in r.stdout     # chem-tools still checked after the bad files
    assert _lab("tasks", "validate", "chem-tools").exit_code == 0


def test_user_suite_dir(tmp_path, monkeypatch):
    suite = tmp_path / "mine"
    suite.mkdir()
    _write(suite / "suite.yaml", "name: mine\nformat: yaml\nfiles: [t.yaml]\n")
    _write(suite / "t.yaml",
           "id: hello\ninstructions: Say hello.\nanswer: hello\nscoring: {scorer: normalized_match}\n")
    r = _lab("tasks", "list", "--json", "--dir", str(tmp_path))
    mine = [json.loads(x) for x in r.stdout.splitlines() if json.loads(x)["suite"] == "mine"]
    assert mine and mine[0]["tasks"] == 1 and not mine[0]["bundled"]
    monkeypatch.setenv("LAB_TASK_DIRS", str(suite))          # a suite directory itself works too
    assert "mine/hello" in _lab("tasks", "list", "mine").stdout


def _write(p, text):
    p.write_text(text)
    return p


SCRIPTED = """\
tasks:
  - id: garbage
    kind: repo
    instructions: x
    sandbox: {image: base}
    scoring: {script: {command: "echo this is not a score"}}
  - id: hangs
    kind: repo
    instructions: x
    sandbox: {image: base}
    scoring: {script: {command: "sleep 30", timeout_s: 1}}
  - id: good
    kind: repo
    instructions: x
    sandbox:
      image: base
      copy_in: [{src: data, dest: /work/data}]
      setup: ["cp /work/data/score.sh /work/score.sh"]
    scoring: {script: {command: "sh /work/score.sh"}, starting_score: 0, reference_score: 84}
  - id: badsetup
    kind: repo
    instructions: x
    sandbox: {image: base, setup: ["echo preparing", "ls /does/not/exist"]}
    scoring: {scorer: exact_match}
"""


@pytest.mark.docker
def test_script_scoring_and_setup_errors_name_the_task(docker_base, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "score.sh").write_text('read sub; echo "{\\"score\\": $((sub * 2))}"\n')
    tasks = {t.id: t for t in load_task_file(_write(tmp_path / "s.yaml", SCRIPTED), suite="demo")}
    with TaskEnvironment(tasks["good"]) as env:
        scores = score_task(tasks["good"], "21", sandbox=env.sandbox)
        assert [(s.scorer, s.value) for s in scores] == [("script", 42.0), ("normalized_score", 0.5)]
        failed = r"task 'demo/garbage': scoring script failed: last line is not JSON"
        with pytest.raises(TaskScoringError, match=failed):
            score_task(tasks["garbage"], "", sandbox=env.sandbox)
        with pytest.raises(TaskScoringError, match=r"task 'demo/hangs': scoring script failed: timed out after 1"):
            score_task(tasks["hangs"], "", sandbox=env.sandbox)
    with pytest.raises(TaskError, match=r"task 'demo/badsetup': setup step 2 \('ls /does/not/exist'\) failed"):
        TaskEnvironment(tasks["badsetup"]).__enter__()
