"""Sandbox images: the definitions under ``sandboxes/<name>/`` and their builds through the Docker SDK.

Each definition is a directory holding a ``Dockerfile`` (and whatever it copies). It builds to
``expertlab/<name>:<content hash>`` (also tagged ``:latest``); the hash covers every file of the directory,
the images it is built ``FROM`` and the Python base, so an image is rebuilt exactly when its definition or
a parent changes. A Dockerfile that says ``FROM ${BASE}`` (after ``ARG BASE=...``) gets the Python base:
``python:3.11-slim`` when present or pullable, else a Debian bookworm root filesystem bootstrapped here
with ``debootstrap`` and imported (no registry needed; root and ~1 minute, once per machine).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lab.sandbox.base import SandboxError

if TYPE_CHECKING:
    from docker import DockerClient

PREFIX = "expertlab/"
PYTHON_BASE = "python:3.11-slim"
BOOTSTRAP_BASE = "expertlab/rootfs:bookworm"
IMAGE_LABEL = "expertlab.image"
HASH_LABEL = "expertlab.image.hash"
_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)", re.IGNORECASE | re.MULTILINE)

Log = Callable[[str], None]


class ImageBuildError(SandboxError):
    """A sandbox image could not be built."""


def sandboxes_dir() -> Path:
    """The directory of sandbox definitions (``$LAB_SANDBOXES`` overrides the repository's ``sandboxes/``)."""
    return Path(os.environ.get("LAB_SANDBOXES") or Path(__file__).resolve().parents[2] / "sandboxes")


def definitions(root: Path | None = None) -> dict[str, Path]:
    """Every sandbox definition: name -> its directory (one with a Dockerfile)."""
    root = root or sandboxes_dir()
    if not root.is_dir():
        return {}
    return {d.name: d for d in sorted(root.iterdir()) if (d / "Dockerfile").is_file()}


def parents(directory: Path) -> list[str]:
    """The ``expertlab/*`` definitions a Dockerfile builds ``FROM`` (by name)."""
    names = []
    for ref in _FROM.findall((directory / "Dockerfile").read_text()):
        if ref.startswith(PREFIX):
            names.append(ref[len(PREFIX):].split(":")[0].split("@")[0])
    return names


def _uses_base(directory: Path) -> bool:
    return re.search(r"^\s*ARG\s+BASE\b", (directory / "Dockerfile").read_text(), re.MULTILINE) is not None


def _order(names: list[str], defs: dict[str, Path]) -> list[str]:
    """``names`` with every definition they depend on, parents first."""
    out: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in out:
            return
        if name not in defs:
            raise ImageBuildError(f"no sandbox definition {name!r} in {sandboxes_dir()} "
                                  f"(have: {', '.join(defs) or 'none'})")
        if name in path:
            raise ImageBuildError(f"sandbox definitions depend on each other in a cycle: {' -> '.join(path)}")
        for p in parents(defs[name]):
            visit(p, (*path, name))
        out.append(name)

    for n in names:
        visit(n, ())
    return out


def content_hash(directory: Path, parent_ids: list[str]) -> str:
    """Hash of every file under ``directory`` (names and bytes) and the parent images' ids."""
    h = hashlib.sha256()
    for f in sorted(p for p in directory.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(directory)).encode() + b"\0")
        h.update(hashlib.sha256(f.read_bytes()).digest())
    for pid in parent_ids:
        h.update(pid.encode() + b"\0")
    return h.hexdigest()[:16]


WHEEL_PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")
"""Platforms the wheelhouses of sandbox images are fetched for (the images' Python is CPython 3.11)."""


def fetch_wheels(directory: Path, log: Log = print) -> list[Path]:
    """Fill the wheelhouses of one definition: for each ``<name>-wheels.txt`` (a requirements file) in
    ``directory``, ``pip download`` the wheels for the images' Python (CPython 3.11, x86-64 Linux) into
    ``<name>-wheels/`` (git-ignored), so the image build itself downloads nothing. A wheelhouse whose stamp
    matches its requirements file is left as it is.

    Returns:
        The wheelhouse directories.

    Raises:
        ImageBuildError: ``pip download`` failed (no index reachable and no wheels fetched before).
    """
    out = []
    for req in sorted(directory.glob("*-wheels.txt")):
        house = directory / req.name[: -len(".txt")]
        digest = hashlib.sha256(req.read_bytes()).hexdigest()
        stamp = house / ".requirements-sha256"
        out.append(house)
        if stamp.is_file() and stamp.read_text() == digest:
            continue
        log(f"fetching wheels of {req.relative_to(directory.parent)} into {house.relative_to(directory.parent)}")
        shutil.rmtree(house, ignore_errors=True)
        house.mkdir()
        argv = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--only-binary=:all:",
                "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "-d", str(house),
                "-r", str(req)]
        for plat in WHEEL_PLATFORMS:
            argv += ["--platform", plat]
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(house, ignore_errors=True)
            raise ImageBuildError(f"{req}: pip download failed (exit {proc.returncode}); the image needs these wheels "
                                  f"and no package index was reachable:\n{(proc.stderr or proc.stdout)[-1500:]}")
        stamp.write_text(digest)
    return out


def _image_id(client: DockerClient, ref: str) -> str | None:
    import docker.errors

    try:
        image_id: str | None = client.images.get(ref).id
        return image_id
    except docker.errors.ImageNotFound:
        return None


def python_base(client: DockerClient, log: Log = print) -> str:
    """The Python base image: ``python:3.11-slim`` (present or pulled), else a locally bootstrapped one."""
    import docker.errors

    for ref in (PYTHON_BASE, BOOTSTRAP_BASE):
        if _image_id(client, ref):
            return ref
    try:
        log(f"pulling {PYTHON_BASE}")
        repo, tag = PYTHON_BASE.split(":")
        client.images.pull(repo, tag=tag)
        return PYTHON_BASE
    except docker.errors.APIError as e:
        log(f"no registry reachable ({str(e.explanation or e)[:120]}); bootstrapping Debian bookworm instead")
    bootstrap_base(client, log)
    return BOOTSTRAP_BASE


def bootstrap_base(client: DockerClient, log: Log = print) -> None:
    """Build ``expertlab/rootfs:bookworm`` from Debian packages (``debootstrap`` + import); needs root.

    Raises:
        ImageBuildError: Not root, ``debootstrap`` missing, or the bootstrap failed.
    """
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("no registry reachable and debootstrap is not installed: apt-get install debootstrap "
                              "(or make python:3.11-slim available to Docker)")
    if os.geteuid() != 0:
        raise ImageBuildError("no registry reachable: bootstrapping the base image with debootstrap needs root "
                              "(run `sudo lab sandbox build base` once, or make python:3.11-slim available)")
    with tempfile.TemporaryDirectory(prefix="expertlab-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        log("debootstrap --variant=minbase --include=python3 bookworm (about a minute)")
        proc = subprocess.run(["debootstrap", "--variant=minbase", "--include=python3", "bookworm", str(rootfs),
                               os.environ.get("LAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImageBuildError(f"debootstrap failed (exit {proc.returncode}): "
                                  f"{proc.stderr[-1500:] or proc.stdout[-1500:]}")
        log(f"importing the root filesystem as {BOOTSTRAP_BASE}")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        stream = tar.stdout
        assert stream is not None  # a pipe
        try:
            repo, tag = BOOTSTRAP_BASE.split(":")
            client.api.import_image_from_stream(stream, repository=repo, tag=tag, changes=['CMD ["python3"]'])
        finally:
            stream.close()
            tar.wait()
        if _image_id(client, BOOTSTRAP_BASE) is None:
            raise ImageBuildError(f"docker import of the bootstrapped root filesystem did not produce {BOOTSTRAP_BASE}")


@dataclass
class ImageStatus:
    """Where one definition stands: its wanted tag and whether that image exists."""

    name: str
    tag: str | None
    built: bool
    note: str = ""


def _plan(client: DockerClient, name: str, directory: Path, base: str | None) -> tuple[str, dict[str, str]]:
    ids = []
    for p in parents(directory):
        pid = _image_id(client, f"{PREFIX}{p}:latest")
        if pid is None:
            raise ImageBuildError(f"{name} builds FROM {PREFIX}{p}, which is not built")
        ids.append(pid)
    args: dict[str, str] = {}
    if base is not None:
        args["BASE"] = base
        ids.append(_image_id(client, base) or base)
    return f"{PREFIX}{name}:{content_hash(directory, ids)}", args


def status(client: DockerClient, names: list[str] | None = None) -> list[ImageStatus]:
    """Whether each definition's image is built at its current content hash (builds nothing)."""
    defs = definitions()
    out = []
    for name in names or list(defs):
        d = defs.get(name)
        if d is None:
            out.append(ImageStatus(name, None, False, "no such definition"))
            continue
        base = next((r for r in (PYTHON_BASE, BOOTSTRAP_BASE) if _image_id(client, r)), None) if _uses_base(d) else None
        if _uses_base(d) and base is None:
            out.append(ImageStatus(name, None, False, "base not bootstrapped"))
            continue
        try:
            tag, _ = _plan(client, name, d, base)
        except ImageBuildError as e:
            out.append(ImageStatus(name, None, False, str(e)))
            continue
        out.append(ImageStatus(name, tag, _image_id(client, tag) is not None))
    return out


def build(names: list[str] | None = None, *, client: DockerClient | None = None, force: bool = False,
          log: Log = print) -> list[str]:
    """Build sandbox images (all definitions by default) and the ones they build FROM; skip up-to-date ones.

    Args:
        names: Definitions to build (``base``, ``repo-setup`` ...); ``None``: all.
        client: Docker client (default: the sandbox backend's).
        force: Rebuild even when an image with the current content hash exists.
        log: Progress lines go here.

    Returns:
        The content-hash tags of the requested images, in build order.

    Raises:
        ImageBuildError: An unknown name, a failed build (with the end of its log), or no base image.
    """
    import docker.errors

    from lab.sandbox.docker import docker_client

    client = client or docker_client()
    defs = definitions()
    order = _order(names or list(defs), defs)
    base = None
    tags = []
    for name in order:
        d = defs[name]
        if _uses_base(d) and base is None:
            base = python_base(client, log)
        fetch_wheels(d, log)
        tag, args = _plan(client, name, d, base if _uses_base(d) else None)
        latest = f"{PREFIX}{name}:latest"
        if not force and _image_id(client, tag):
            log(f"{tag} up to date")
        else:
            log(f"building {tag}" + (f" FROM {args['BASE']}" if args else ""))
            lines: list[str] = []
            try:
                for chunk in client.api.build(path=str(d), tag=tag, buildargs=args, rm=True, forcerm=True,
                                              network_mode="host", decode=True,
                                              labels={IMAGE_LABEL: name, HASH_LABEL: tag.rsplit(":", 1)[1]}):
                    if "error" in chunk:
                        raise ImageBuildError(f"building {name} failed: {chunk['error'].strip()}\n"
                                              + "".join(lines[-20:]))
                    if chunk.get("stream"):
                        lines.append(chunk["stream"])
            except docker.errors.APIError as e:
                raise ImageBuildError(f"building {name} failed: {e.explanation or e}") from e
            if _image_id(client, tag) is None:
                raise ImageBuildError(f"building {name} produced no image {tag}:\n" + "".join(lines[-20:]))
        client.images.get(tag).tag(latest)
        _remove_stale(client, name, tag, log)
        tags.append(tag)
    return tags


def _remove_stale(client: DockerClient, name: str, keep: str, log: Log) -> None:
    """Untag builds of ``name`` from older definitions (images still used by a container stay)."""
    import docker.errors

    for img in client.images.list(name=f"{PREFIX}{name}"):
        for t in img.tags:
            if t not in (keep, f"{PREFIX}{name}:latest"):
                try:
                    client.images.remove(t)
                    log(f"removed stale {t}")
                except docker.errors.APIError:
                    pass


def ensure_image(name: str, *, log: Log = print) -> str:
    """The tag of definition ``name``'s image, building it (and its parents) first when missing or stale."""
    return build([name], log=log)[-1]
