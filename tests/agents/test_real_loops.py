"""Every loop end to end for real: the embedded SmolLM2 (CPU, constrained decoding) against real Docker
sandboxes. Few and short on purpose (the smallest max_tokens that fit whole replies, one or two steps): they
prove the parts fit, not that a 135M model is a good agent."""

from __future__ import annotations

import sys
from pathlib import Path

import pexpect
import pytest

from lab.agents import DeraAgent, Limits, ReActAgent
from lab.models import Sampling

pytestmark = pytest.mark.docker
LAB = str(Path(sys.executable).parent / "lab")


def _docker(image: str) -> None:
    from lab.sandbox import SandboxUnavailable

    try:
        from lab.sandbox.docker import docker_client

        docker_client()
    except SandboxUnavailable as e:
        pytest.skip(f"no Docker engine: {e}")
    from lab.sandbox.images import ensure_image

    ensure_image(image, log=lambda _line: None)


@pytest.fixture(scope="module")
def smollm2():
    from lab.models import load_model

    return load_model("smollm2")


def test_dera_for_real(store, smollm2):
    from lab.tasks import get_task

    task = get_task("medqa-open/dev-0001")
    agent = DeraAgent(smollm2, limits=Limits(steps=1), sampling=Sampling(max_tokens=192, temperature=0),
                      message_max_chars=120)
    res = agent.start(store, task.instructions, task=task.key).run()
    assert res.status == "done" and res.stop_reason in ("final", "limit:steps")
    assert isinstance(res.answer, str) and res.answer.strip()
    calls = store.events(res.run_id, kinds=["model_call"])
    assert [c.agent for c in calls] == ["decider", "researcher", "decider"]
    assert all(c.attrs["gen_ai.usage.output_tokens"] > 0 for c in calls)
    assert res.tokens == sum(c.attrs["gen_ai.usage.input_tokens"] + c.attrs["gen_ai.usage.output_tokens"]
                             for c in calls)


def test_react_for_real_in_docker(store, smollm2):
    _docker("base")
    from lab.sandbox import SandboxSpec, open_sandbox
    from lab.tools import shell

    agent = ReActAgent(smollm2, [shell], limits=Limits(steps=2), sampling=Sampling(max_tokens=160, temperature=0))
    run = agent.start(store, "List the files in the current directory with the shell tool, then submit how many "
                             "there are.", sandbox=lambda rec: open_sandbox(SandboxSpec(), recorder=rec))
    try:
        res = run.run()
    finally:
        run.sandbox.close()
    assert res.status == "done" and res.stop_reason in ("submitted", "limit:steps", "invalid_replies")
    kinds = [e.kind for e in store.events(res.run_id)]
    assert kinds.count("model_call") == res.steps >= 1
    snaps = [e for e in store.events(res.run_id, kinds=["sandbox_exec"]) if e.attrs.get("lab.sandbox.op") == "snapshot"]
    assert snaps  # the docker sandbox was snapshotted for forks
    if "tool_call" in kinds:
        assert "tool_result" in kinds


def test_repo_setup_through_the_runner_for_real(store):
    _docker("repo-setup")
    from lab.experiment import Experiment
    from lab.runner import Runner

    exp = Experiment.from_dict({"name": "real", "tasks": [{"suite": "repo-setup", "ids": ["tinyclf-pinned-version"]}],
                                "loops": ["repo_setup"], "models": ["smollm2"], "budgets": {"steps": 2},
                                "sampling": {"max_tokens": 320, "temperature": 0}})
    (o,) = Runner(store, progress=False).run(exp).outcomes
    assert o.status == "done", o.error
    assert o.stop_reason in ("submitted", "limit:steps", "invalid_replies")
    assert o.scores  # the task's SUPER scoring ran (a 135M model is not expected to pass)
    row = store.get_run(o.run_id)
    assert row["agent"] == "repo_setup" and row["status"] == "done"


def test_human_session_in_docker(tmp_path):
    _docker("base")
    task = tmp_path / "task.yaml"
    task.write_text("id: hello\ninstructions: Create hello.txt containing hi, then submit done.\n"
                    "sandbox: {image: base, workdir: /work}\nscoring: {scorer: exact_match}\nanswer: done\n")
    store = tmp_path / "traces.db"
    child = pexpect.spawn(LAB, ["human", str(task), "--store", str(store), "--expert", "eve"], encoding="utf-8",
                          timeout=120, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(tmp_path)})
    child.expect(r"\$ ")
    child.sendline("echo hi > hello.txt && whoami && cat /work/hello.txt")
    child.expect("hi")
    child.expect(r"\$ ")
    child.sendline("submit done")
    child.expect("exact_match=1.0")
    child.expect(pexpect.EOF)
    from lab.traces import TraceStore

    st = TraceStore(store)
    (run,) = st.list_runs()
    out = [e.attrs["content"] for e in st.events(run["run_id"], kinds=["tool_result"])][0]
    assert "root" not in out.split("\n")[0]  # the sandbox user is not root
    assert run["status"] == "done" and run["is_human"]
