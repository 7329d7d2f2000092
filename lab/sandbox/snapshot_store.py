"""Snapshots that outlive their sandbox and process: each step's workdir as an archive in a store beside the
trace store (``traces.db.snapshots/``), so an interrupted run resumes with its files and a fork restores step
N's files after its parent's sandbox and process are gone.

Archives are content-addressed (``objects/<sha256>.tar``; a step that changed nothing adds nothing), and each
run lists its archives (``runs/<run_id>.json``). The store is capped (``$LAB_SNAPSHOT_CAP``, default
4 GiB): past it, the archives of finished runs go first, oldest first; ``lab sandbox gc`` applies the cap,
``lab sandbox ls`` shows the size.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tarfile
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from lab.sandbox import archive
from lab.sandbox.base import Sandbox, SandboxError
from lab.sandbox.spec import parse_size

if TYPE_CHECKING:
    from lab.traces.protocol import Store

CAP_ENV = "LAB_SNAPSHOT_CAP"
DEFAULT_CAP = "4g"


def snapshot_cap() -> int:
    """The snapshot store's cap in bytes (``$LAB_SNAPSHOT_CAP``: ``500m``, ``4g`` ...)."""
    return parse_size(os.environ.get(CAP_ENV, DEFAULT_CAP))


class SnapshotStore:
    """Workdir archives of runs' steps.

    Args:
        root: The store's folder (created on first write).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @classmethod
    def beside(cls, store_path: str | os.PathLike[str]) -> SnapshotStore:
        """The snapshot store of the trace store at ``store_path``."""
        p = Path(store_path)
        return cls(p.with_name(p.name + ".snapshots"))

    def _object(self, digest: str) -> Path:
        return self.root / "objects" / f"{digest}.tar"

    def _manifest(self, run_id: str) -> Path:
        return self.root / "runs" / f"{run_id}.json"

    # -- saving and restoring --------------------------------------------------------------------

    def save(self, sandbox: Sandbox, run_id: str) -> str:
        """Archive ``sandbox``'s workdir for ``run_id``; return the archive's digest.

        Raises:
            SandboxError: The workdir cannot be copied out (over ``archive_cap`` ...).
        """
        with tempfile.TemporaryDirectory(prefix="lab-snap-") as tmp:
            sandbox.copy_out(sandbox.workdir, tmp)
            top = Path(tmp) / Path(sandbox.workdir).name
            data = _tar(top if top.is_dir() else Path(tmp))
        digest = hashlib.sha256(data).hexdigest()
        listed = self.digests(run_id)
        if digest not in listed:
            # listed first, so a sweep never takes an archive being written
            self._write_manifest(run_id, [*listed, digest])
        obj = self._object(digest)
        if not obj.exists():
            obj.parent.mkdir(parents=True, exist_ok=True)
            part = obj.with_suffix(f".{os.getpid()}.part")
            part.write_bytes(data)
            os.replace(part, obj)
        return digest

    def restore(self, sandbox: Sandbox, digest: str) -> None:
        """Put the archive ``digest`` back as ``sandbox``'s workdir (what was there is removed).

        Raises:
            SandboxError: The archive is gone (removed by the cap or ``lab sandbox gc``).
        """
        obj = self._object(digest)
        if not obj.is_file():
            raise SandboxError(f"snapshot archive {digest[:12]} is gone from {self.root} (removed by the snapshot "
                               f"cap ${CAP_ENV} or lab sandbox gc)")
        with tempfile.TemporaryDirectory(prefix="lab-snap-") as tmp:
            dest = Path(tmp) / "work"
            dest.mkdir()
            with obj.open("rb") as f:
                archive.extract(iter(lambda: f.read(1 << 20), b""), dest, max_bytes=obj.stat().st_size * 2 + (1 << 20),
                                what=f"snapshot archive {obj}")
            r = sandbox.exec(["sh", "-c", 'find "$1" -mindepth 1 -maxdepth 1 -exec rm -rf {} +', "sh", sandbox.workdir],
                             timeout=120)
            if r.exit_code != 0:
                raise SandboxError(f"cannot clear {sandbox.workdir} to restore a snapshot: {r.stderr.strip()[:200]}")
            sandbox.copy_in(dest, sandbox.workdir)

    # -- bookkeeping -----------------------------------------------------------------------------

    def digests(self, run_id: str) -> list[str]:
        """The archives ``run_id`` took."""
        try:
            return list(json.loads(self._manifest(run_id).read_text()))
        except (OSError, ValueError):
            return []

    def _write_manifest(self, run_id: str, manifest: list[str]) -> None:
        path = self._manifest(run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(f".{os.getpid()}.part")
        part.write_text(json.dumps(manifest, sort_keys=True))
        os.replace(part, path)

    def size(self) -> int:
        """Bytes the archives take."""
        d = self.root / "objects"
        return sum(p.stat().st_size for p in d.glob("*.tar")) if d.is_dir() else 0

    def runs(self) -> list[str]:
        """Runs with archived steps."""
        d = self.root / "runs"
        return sorted(p.stem for p in d.glob("*.json")) if d.is_dir() else []

    def gc(self, store: Store, cap: int | None = None) -> tuple[list[str], int]:
        """Apply the retention policy: forget the runs no longer in ``store``, then, while the archives take more
        than ``cap`` (default :func:`snapshot_cap`), the finished runs, oldest first; remove archives no run
        lists. Runs still going keep theirs.

        Returns:
            The runs whose snapshots were dropped, and the bytes freed.
        """
        from lab.traces.schema import FINAL_STATUSES

        cap = snapshot_cap() if cap is None else cap
        before = self.size()
        rows = {r["run_id"]: r for r in store.list_runs()}
        dropped = [rid for rid in self.runs() if rid not in rows]
        for rid in dropped:
            self._manifest(rid).unlink(missing_ok=True)
        self._sweep()
        finished = sorted((r for rid, r in rows.items() if rid in self.runs() and r["status"] in FINAL_STATUSES),
                          key=lambda r: r["finished_at"] or r["created_at"] or 0)
        for r in finished:
            if self.size() <= cap:
                break
            self._manifest(r["run_id"]).unlink(missing_ok=True)
            dropped.append(r["run_id"])
            self._sweep()
        return dropped, before - self.size()

    def _sweep(self) -> None:
        """Remove archives no run lists (and partial writes over a minute old)."""
        d = self.root / "objects"
        if not d.is_dir():
            return
        used = {digest for rid in self.runs() for digest in self.digests(rid)}
        now = time.time()
        for p in d.iterdir():
            if (p.suffix == ".tar" and p.stem not in used) or (p.suffix == ".part" and now - p.stat().st_mtime > 60):
                p.unlink(missing_ok=True)

    def remove(self) -> None:
        """Remove the whole store."""
        shutil.rmtree(self.root, ignore_errors=True)


def _tar(top: Path) -> bytes:
    """``top``'s content as a tar, the same bytes for the same files (sorted names; no owners, no times: a
    restored workdir's files are dated 1970)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(top.rglob("*")):
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(top)))
            info.uid = info.gid = info.mtime = 0
            info.uname = info.gname = ""
            info.pax_headers = {}
            if info.isreg():
                with path.open("rb") as f:
                    tar.addfile(info, f)
            elif info.isdir() or info.issym():
                tar.addfile(info)
    return buf.getvalue()
