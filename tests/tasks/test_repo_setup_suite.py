"""repo-setup: SUPER-format problems over small repositories in an offline image; scripted experts
reproduce every gold answer, directly and through the repo-setup loop."""

from __future__ import annotations

import json
import re

import pytest

from lab.tasks import TaskSpecError, check_task, load_suite, load_super_jsonl, score_task
from lab.tasks.environment import TaskEnvironment
from lab.tasks.experts import expert_model, expert_solution, run_expert

ALL = [t.id for t in load_suite("repo-setup")]
CI = [t.id for t in load_suite("repo-setup", subset="ci")]


def _task(tid):
    return next(t for t in load_suite("repo-setup") if t.id == tid)


def test_problems_are_super_format_with_experts():
    tasks = load_suite("repo-setup")
    assert len(tasks) >= 6
    for t in tasks:
        assert t.kind == "repo" and t.sandbox.image == "repo-setup" and not t.resources.network
        assert isinstance(t.answer, dict) and t.answer and t.entrypoint and t.landmarks
        assert t.scoring.scorer == "json_match" and t.scoring.args == {"float_tol": 1e-2, "super_compat": False}
        assert t.sandbox.setup == [f"cp -r /opt/repos/{t.metadata['github_repo'].split('/')[1]} /work/"
                                   f"{t.metadata['github_repo'].split('/')[1]}"]
        for p in t.landmarks:
            re.compile(p)
        assert expert_solution(t).commands
        assert check_task(t) == []


def test_super_loader_errors(tmp_path):
    p = tmp_path / "p.jsonl"
    row = {"task_id": "a", "query": "q", "answer": "{\"x\": 1}", "landmarks": [], "entrypoint": "",
           "pre_execute_cells": []}
    p.write_text(json.dumps(row) + "\n" + json.dumps({**row, "task_id": "b", "answer": "{oops"}) + "\n")
    with pytest.raises(TaskSpecError, match=r"p.jsonl:2: task 'b': 'answer' is not valid JSON"):
        load_super_jsonl(p)
    p.write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    with pytest.raises(TaskSpecError, match=r"p.jsonl:2: duplicate task_id 'a'"):
        load_super_jsonl(p)
    p.write_text(json.dumps({**row, "landmarks": "x"}) + "\n")
    with pytest.raises(TaskSpecError, match="'landmarks' must be a list"):
        load_super_jsonl(p)


def _check_expert(tid):
    t = _task(tid)
    with TaskEnvironment(t) as env:
        assert env.sandbox.exec("id -un").stdout.strip() == "agent"
        assert env.sandbox.exec("python3 -c 'import socket; socket.create_connection((\"pypi.org\", 443), 3)'"
                                ).exit_code != 0                                     # no network: offline pip
        answer, transcript = run_expert(t, env.sandbox)
    scores = {s.scorer: s.value for s in score_task(t, answer, transcript=transcript)}
    assert answer == t.answer
    assert scores == {"output_match": 1.0, "landmarks": 1.0}


@pytest.mark.docker
@pytest.mark.parametrize("tid", CI)
def test_expert_reproduces_gold(docker_base, tid):
    _check_expert(tid)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("tid", [t for t in ALL if t not in CI])
def test_expert_reproduces_gold_full_suite(docker_base, tid):
    _check_expert(tid)


@pytest.mark.docker
def test_expert_through_repo_setup_loop(docker_base, store):
    from lab.agents.repo_setup import RepoSetupAgent

    t = _task(CI[0])
    with TaskEnvironment(t) as env:
        run = RepoSetupAgent(expert_model(t)).start(store, t.instructions, sandbox=env.sandbox, task=t.key)
        result = run.run()
    assert result.status == "done" and result.stop_reason == "submitted"
    outputs = [e.attrs.get("output") or e.attrs.get("content") or "" for e in store.events(result.run_id)
               if e.kind == "tool_result"]
    scores = {s.scorer: s.value for s in score_task(t, result.answer, transcript=[str(o) for o in outputs])}
    assert result.answer == t.answer and scores["output_match"] == 1.0
    assert scores["landmarks"] == 1.0
