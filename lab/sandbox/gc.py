"""Ownership labels on everything a sandbox creates, and removal of what dead processes left behind."""

from __future__ import annotations

import json
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lab.traces.store import current_owner, owner_alive

if TYPE_CHECKING:
    from docker import DockerClient

LABEL = "expertlab.sandbox"
"""Marks containers, volumes and snapshot images a sandbox created (value: the sandbox id)."""
OWNER = "expertlab.owner"
"""``host:pid:start`` of the process that owns the resource."""
RUN = "expertlab.run_id"
SNAPSHOT = "expertlab.snapshot"

OWNER_FILE = ".owner.json"
"""Written into each local sandbox's private directory."""

_started_gc = threading.Event()


def owner_labels(sandbox_id: str, run_id: str | None) -> dict[str, str]:
    """The labels every container, volume and snapshot image of sandbox ``sandbox_id`` carries."""
    return {LABEL: sandbox_id, OWNER: current_owner(), RUN: run_id or ""}


@dataclass
class GcReport:
    """What ``gc`` removed (or, with ``dry_run``, would remove)."""

    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    local_dirs: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """How many things in all."""
        return len(self.containers) + len(self.volumes) + len(self.images) + len(self.local_dirs)


def _dead(labels: dict[str, str] | None, everything: bool) -> bool:
    owner = (labels or {}).get(OWNER)
    return everything or not owner_alive(owner)


def gc_docker(client: DockerClient, *, everything: bool = False, dry_run: bool = False) -> GcReport:
    """Remove sandbox containers, volumes and snapshot images whose owning process is gone.

    Args:
        client: The Docker engine's client.
        everything: Also remove those of live processes (``lab sandbox gc --all``).
        dry_run: Only report.

    Returns:
        What was removed.
    """
    import docker.errors

    report = GcReport()
    for c in client.api.containers(all=True, filters={"label": LABEL}):  # one call, no per-container inspect
        if _dead(c.get("Labels"), everything):
            report.containers.append((c.get("Names") or [c["Id"][:12]])[0].lstrip("/"))
            if not dry_run:
                try:
                    client.api.remove_container(c["Id"], force=True, v=True)
                except (docker.errors.NotFound, docker.errors.APIError):
                    pass  # already gone, or being removed by someone else right now
    for v in client.volumes.list(filters={"label": LABEL}):
        if _dead(v.attrs.get("Labels"), everything):
            report.volumes.append(v.name)
            if not dry_run:
                try:
                    v.remove(force=True)
                except (docker.errors.NotFound, docker.errors.APIError):
                    pass  # still in use by a container gc keeps; the next gc takes it
    for img in client.api.images(all=True, filters={"label": LABEL}):
        if _dead(img.get("Labels"), everything):
            tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
            report.images.append(tags[0] if tags else img["Id"][:19])
            if not dry_run:
                try:
                    client.api.remove_image(img["Id"], force=True)
                except (docker.errors.NotFound, docker.errors.APIError):
                    pass
    return report


def local_labels(d: Path) -> dict[str, str] | None:
    """The owner labels of a local sandbox directory, or ``None`` when the lab did not create it.

    A directory counts as the lab's only when it is a real directory (not a link) holding a regular
    :data:`OWNER_FILE` whose sandbox id is the directory name's prefix (``<sandbox id>-...``), as the local
    backend writes it at creation.
    """
    marker = d / OWNER_FILE
    if d.is_symlink() or not d.is_dir() or marker.is_symlink() or not marker.is_file():
        return None
    try:
        labels = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(labels, dict):
        return None
    sid = labels.get(LABEL)
    if not isinstance(sid, str) or not sid or not d.name.startswith(f"{sid}-"):
        return None
    return {k: v for k, v in labels.items() if isinstance(v, str)}


def gc_local(root: Path, *, everything: bool = False, dry_run: bool = False) -> GcReport:
    """Remove local sandbox directories under ``root`` whose owning process is gone.

    Only directories the local backend created and marked (see :func:`local_labels`) are ever removed,
    with or without ``everything``; anything else under ``root`` is left alone.
    """
    report = GcReport()
    if not root.is_dir():
        return report
    for d in sorted(root.iterdir()):
        labels = local_labels(d)
        if labels is not None and _dead(labels, everything):
            report.local_dirs.append(str(d))
            if not dry_run:
                shutil.rmtree(d, ignore_errors=True)
    return report


def gc_docker_once_in_background(client: DockerClient) -> None:
    """Run :func:`gc_docker` once per process, off the caller's path (called when a Docker sandbox opens)."""
    if _started_gc.is_set():
        return
    _started_gc.set()

    def run() -> None:
        try:
            gc_docker(client)
        except Exception:  # noqa: BLE001 - start-up cleaning is best effort; `lab sandbox gc` reports errors
            pass

    threading.Thread(target=run, name="lab-sandbox-gc", daemon=True).start()
