"""Provenance on every run: recorded at run_started, shown by `lab runs show`, compared by `lab runs diff`."""

from __future__ import annotations

import io
import json
import types

import pytest

from lab.agents import ReActAgent
from lab.models import Sampling, ScriptedModel, ToolCall
from lab.provenance import diff, model_identity, of_run, sandbox_identity
from lab.tasks import get_task
from lab.tools.registry import get_tools
from tests.traces.conftest import run_lab


def agent_run(store, *, seed, temperature, sandbox=None):
    task = get_task("chem-tools/mw-aspirin")
    model = ScriptedModel([ToolCall("", "submit", {"answer": "180.16"})])
    agent = ReActAgent(model, get_tools(["molecular_weight"]), sampling=Sampling(temperature=temperature))
    run = agent.start(store, task.instructions, task=task, seed=seed, sandbox=sandbox)
    run.run()
    return run.run_id


def test_run_started_records_provenance(store):
    p = of_run(store, agent_run(store, seed=1, temperature=0.0))
    assert p["lab"]["version"] and p["python"]
    assert len(p["lab"]["commit"]) == 40 and isinstance(p["lab"]["dirty"], bool)
    for pkg in ("torch", "transformers", "langgraph", "docker", "panel"):
        assert p["packages"][pkg]
    assert p["model"] == {"name": "scripted", "class": "ScriptedModel"}
    assert p["task"]["key"] == "chem-tools/mw-aspirin" and len(p["task"]["sha256"]) == 64
    assert p["seed"] == 1 and p["sampling"]["temperature"] == 0.0 and p["sampling"]["seed"] == 1


def test_runs_diff_and_show(store):
    a = agent_run(store, seed=1, temperature=0.0)
    b = agent_run(store, seed=2, temperature=0.7)
    keys = [k for k, _, _ in diff(of_run(store, a), of_run(store, b))]
    assert keys == ["sampling.seed", "sampling.temperature", "seed"]
    r = run_lab("runs", "diff", a, b, "--store", str(store.path))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["sampling.seed: 1 → 2", "sampling.temperature: 0.0 → 0.7", "seed: 1 → 2"]
    same = run_lab("runs", "diff", a, a, "--store", str(store.path))
    assert same.returncode == 0 and same.stdout == ""
    shown = run_lab("runs", "show", a, "--store", str(store.path))
    assert '"sha256"' in shown.stdout and '"transformers"' in shown.stdout


def test_model_identity_hashes_local_weights(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 1000)
    fake = types.SimpleNamespace(name="hf:x", path=tmp_path)
    first = model_identity(fake)
    assert first["hash_kind"] == "sha256" and len(first["weights_hash"]) == 64
    (tmp_path / "model.safetensors").write_bytes(b"\1" * 1000)
    assert model_identity(fake)["weights_hash"] != first["weights_hash"]
    served = model_identity(types.SimpleNamespace(name="openai:m", base_urls=["http://h/v1"], model="m"))
    assert served["base_urls"] == ["http://h/v1"] and served["server_model"] == "m"


def test_sandbox_image_digest_and_human_sessions(store):
    from lab.sandbox import SandboxSpec, SandboxUnavailable, open_sandbox
    from tests.sandbox.conftest import docker_ready

    if docker_ready():
        pytest.skip("no Docker engine")
    try:
        sb = open_sandbox(SandboxSpec(backend="docker"))
    except SandboxUnavailable as e:
        pytest.skip(str(e))
    with sb:
        ident = sandbox_identity(sb)
        assert ident["backend"] == "docker" and ident["image_id"].startswith("sha256:")
        p = of_run(store, agent_run(store, seed=0, temperature=0.0, sandbox=sb))
        assert p["sandbox"]["image_id"] == ident["image_id"]

    from lab.agents.human import HumanSession

    task = get_task("chem-tools/mw-aspirin")
    s = HumanSession(store, task, expert="bob", stdin=io.StringIO("submit 180.16\n"), stdout=io.StringIO())
    s.run()
    hp = of_run(store, s.run_id)
    assert hp["task"]["sha256"] == p["task"]["sha256"] and "model" not in hp
    assert json.dumps(hp)
