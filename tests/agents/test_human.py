"""The human expert's session, driven through a pseudo-terminal (pexpect) like a person at a terminal."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pexpect
import pytest

LAB = str(Path(sys.executable).parent / "lab")

TASK = """
id: count-lines
kind: repo
instructions: 'How many lines does data.txt (in the working directory) have? Submit {"lines": N}.'
sandbox: {image: base, workdir: /work, setup: ["printf 'a\\\\nb\\\\nc\\\\n' > data.txt"]}
scoring: {scorer: exact_match, intermediate: true}
answer: {"lines": 3}
"""


def spawn(tmp_path, store, text=TASK, *args, user="alice"):
    task = tmp_path / "task.yaml"
    task.write_text(text)
    return pexpect.spawn(LAB, ["human", str(task), "--store", str(store), "--backend", "local", *args],
                         cwd=str(tmp_path), encoding="utf-8", timeout=60,
                         env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path), "USER": user})


@pytest.fixture
def lab_store(tmp_path):
    return tmp_path / "traces.db"


def test_human_session_records_commands_pauses_scores(tmp_path, lab_store):
    child = spawn(tmp_path, lab_store, TASK, "--expert", "alice")
    child.expect(r"\$ ")
    child.sendline("mkdir sub && cd sub && wc -l ../data.txt")
    child.expect("3 ../data.txt")
    child.expect(r"\$ ")
    child.sendline("pwd")
    child.expect("/sub")
    child.expect(r"\$ ")
    child.sendline("pause coffee")
    child.expect("clock paused")
    child.expect(r"\(paused\)\] \$ ")
    child.sendline("ls")
    child.expect("the clock is paused")
    time.sleep(1.5)  # paused time must not count
    child.sendline("resume")
    child.expect("clock running")
    child.expect(r"\$ ")
    child.sendline('score {"lines": 2}')
    child.expect(r"score: exact_match=0.0")
    child.expect(r"\$ ")
    child.sendline('submit {"lines": 3}')
    child.expect(r"submitted: exact_match=1.0")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0

    from lab.traces import TraceStore

    st = TraceStore(lab_store)
    (run,) = st.list_runs()
    assert run["is_human"] and run["status"] == "done" and run["model"] == "human:alice"
    evs = st.events(run["run_id"])
    cmds = [e.attrs["lab.arguments"]["command"] for e in evs if e.kind == "tool_call"]
    assert cmds == ["mkdir sub && cd sub && wc -l ../data.txt", "pwd"]  # `ls` while paused did not run
    outs = [e.attrs["content"] for e in evs if e.kind == "tool_result"]
    assert "3 ../data.txt" in outs[0] and outs[1].strip().endswith("/sub")  # the cd persisted
    actions = [e.attrs["lab.action"] for e in evs if e.kind == "human_action"]
    assert actions == ["pause", "resume", "score", "submit"]
    pause_ev = next(e for e in evs if e.attrs.get("lab.action") == "pause")
    resume_ev = next(e for e in evs if e.attrs.get("lab.action") == "resume")
    assert resume_ev.ts - pause_ev.ts >= 1.5
    assert resume_ev.elapsed - pause_ev.elapsed < 0.5  # working time stood still while paused
    scores = st.scores_frame()
    assert sorted(zip(scores["value"], scores["final"], strict=True)) == [(0.0, False), (1.0, True)]
    assert run["elapsed"] < evs[-1].ts - evs[0].ts - 1.0


def test_human_quit_and_no_intermediate(tmp_path, lab_store):
    child = spawn(tmp_path, lab_store, TASK.replace("intermediate: true", "intermediate: false"), user="bob")
    child.expect(r"\$ ")
    child.sendline("score")
    child.expect("does not give intermediate scores")
    child.sendline("quit")
    child.expect("session cancelled")
    child.expect(pexpect.EOF)
    from lab.traces import TraceStore

    (run,) = TraceStore(lab_store).list_runs()
    assert run["status"] == "cancelled" and run["model"] == "human:bob"
