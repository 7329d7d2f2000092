"""Tar streams that come out of a sandbox, checked member by member before anything touches the host.

A sandbox is untrusted: a tar from it may name absolute paths or ``..``, carry links that leave the
destination, devices, or sizes meant to fill the host. :func:`extract` reads the stream incrementally (never
whole in memory), refuses any such member with :class:`ArchiveRefused`, writes through directory
descriptors that never follow links, into a private directory that is moved into place only once the whole
archive passed (a refused archive leaves the destination as it was). Ownership and special mode bits are
never applied. :func:`checked` passes a stream through unchanged while enforcing the same size limits (used
for snapshots, whose stream goes from one container to another). Works the same on every supported Python:
it relies on no ``tarfile`` extraction filter.
"""

from __future__ import annotations

import io
import os
import queue
import shutil
import stat
import tarfile
import tempfile
import threading
from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from lab.sandbox.base import SandboxError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

MAX_MEMBERS = 100_000
"""Most members one archive may hold."""
HEADER_ALLOWANCE = 64 << 20
"""Bytes a stream may carry beyond its members' data (headers, long names, padding)."""
_NOFOLLOW_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class ArchiveRefused(SandboxError):
    """An archive from a sandbox broke a rule (unsafe member, too large, too many members)."""


class _Reader(io.RawIOBase):
    """A file over an iterator of byte chunks that refuses to read past ``limit`` bytes; ``tee`` (when given)
    gets each chunk as it is read."""

    def __init__(self, chunks: Iterable[bytes], limit: int, what: str,
                 tee: Callable[[bytes], None] | None = None) -> None:
        self._it = iter(chunks)
        self._buf = b""
        self.total = 0
        self.limit = limit
        self.what = what
        self.tee = tee

    def readable(self) -> bool:
        """Always: this is a reader."""
        return True

    def readinto(self, b: WriteableBuffer) -> int:
        """Fill ``b`` from the next chunk(s); 0 at the end of the stream.

        Raises:
            ArchiveRefused: The stream went over its limit.
        """
        while not self._buf:
            try:
                chunk = next(self._it)
            except StopIteration:
                return 0
            self.total += len(chunk)
            if self.total > self.limit:
                raise ArchiveRefused(f"{self.what}: the archive is over its limit of {self.limit} bytes")
            if self.tee is not None:
                self.tee(chunk)
            self._buf = chunk
        view = memoryview(b).cast("B")
        n = min(len(view), len(self._buf))
        view[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class _Budget:
    """Counts members and declared sizes, refusing the first that goes over."""

    def __init__(self, max_bytes: int, what: str, max_members: int) -> None:
        self.left, self.members, self.max_members, self.max_bytes, self.what = max_bytes, 0, max_members, \
            max_bytes, what

    def take(self, m: tarfile.TarInfo) -> None:
        self.members += 1
        if self.members > self.max_members:
            raise ArchiveRefused(f"{self.what}: more than {self.max_members} files")
        if m.isreg():
            self.left -= m.size
            if self.left < 0:
                raise ArchiveRefused(f"{self.what}: {m.name!r} ({m.size} bytes) takes it over the limit of "
                                     f"{self.max_bytes} bytes")


def _parts(name: str, what: str) -> list[str]:
    """The components of a member name, refusing absolute names, ``..`` and empty names."""
    if name.startswith("/") or "\0" in name:
        raise ArchiveRefused(f"{what}: refused member {name!r} (absolute path)")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveRefused(f"{what}: refused member {name!r} (goes up with '..')")
    if not parts:
        raise ArchiveRefused(f"{what}: refused member {name!r} (empty name)")
    return parts


def _link_stays_inside(parts: list[str], target: str) -> bool:
    """Whether a symlink at ``parts`` pointing to ``target`` resolves (lexically) inside the archive root."""
    if target.startswith("/") or not target:
        return False
    depth = len(parts) - 1
    for p in target.split("/"):
        if p == "..":
            depth -= 1
            if depth < 0:
                return False
        elif p not in ("", "."):
            depth += 1
    return True


def _open_dir(root_fd: int, parts: list[str], what: str, name: str) -> int:
    """A descriptor of directory ``parts`` under ``root_fd``, made if missing, never through a link."""
    fd = os.dup(root_fd)
    try:
        for p in parts:
            try:
                os.mkdir(p, 0o700, dir_fd=fd)
            except FileExistsError:
                pass
            try:
                nfd = os.open(p, _NOFOLLOW_DIR, dir_fd=fd)
            except OSError:
                raise ArchiveRefused(f"{what}: refused member {name!r} (goes through a link or a file)") from None
            os.close(fd)
            fd = nfd
        return fd
    except BaseException:
        os.close(fd)
        raise


def _write_member(tar: tarfile.TarFile, m: tarfile.TarInfo, root_fd: int, parts: list[str],
                  files: dict[str, list[str]], what: str) -> None:
    parent = _open_dir(root_fd, parts[:-1], what, m.name)
    leaf = parts[-1]
    try:
        if m.isdir():
            os.close(_open_dir(parent, [leaf], what, m.name))
            os.chmod(leaf, (m.mode & 0o755) | 0o700, dir_fd=parent)
        elif m.isreg():
            data = tar.extractfile(m)
            if data is None:  # never for a regular member
                raise ArchiveRefused(f"{what}: {m.name!r} has no content")
            fd = os.open(leaf, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=parent)
            with os.fdopen(fd, "wb") as out, data:
                shutil.copyfileobj(data, out, 1 << 16)
            os.chmod(leaf, (m.mode & 0o755) | 0o600, dir_fd=parent)
            files["/".join(parts)] = parts
        elif m.issym():
            if not _link_stays_inside(parts, m.linkname):
                raise ArchiveRefused(f"{what}: refused link {m.name!r} -> {m.linkname!r} (points outside)")
            os.symlink(m.linkname, leaf, dir_fd=parent)
        elif m.islnk():
            target = "/".join(_parts(m.linkname, what))
            if target not in files:
                raise ArchiveRefused(f"{what}: refused hard link {m.name!r} -> {m.linkname!r} "
                                     "(not to a file of this archive)")
            src = _open_dir(root_fd, files[target][:-1], what, m.name)
            try:
                os.link(files[target][-1], leaf, src_dir_fd=src, dst_dir_fd=parent, follow_symlinks=False)
            finally:
                os.close(src)
        else:
            raise ArchiveRefused(f"{what}: refused member {m.name!r} (a device, fifo or other special file)")
    except FileExistsError:
        raise ArchiveRefused(f"{what}: refused member {m.name!r} (appears twice)") from None
    finally:
        os.close(parent)


def _plan(src: Path, dst: Path, moves: list[tuple[Path, Path]], what: str) -> None:
    """Where each extracted entry goes in ``dst``: new names move whole; a directory over a directory merges;
    a file or link replaces a file or link; anything over a directory is refused (nothing moves)."""
    for entry in sorted(os.listdir(src)):
        s, d = src / entry, dst / entry
        try:
            dmode = os.lstat(d).st_mode
        except FileNotFoundError:
            moves.append((s, d))
            continue
        s_dir = stat.S_ISDIR(os.lstat(s).st_mode)
        if stat.S_ISDIR(dmode):
            if not s_dir:
                raise ArchiveRefused(f"{what}: {d} is a directory on the host; not replacing it with a file")
            _plan(s, d, moves, what)
        else:
            moves.append((s, d))  # replaces a host file or link (never followed)


def extract(chunks: Iterable[bytes], dest: str | Path, *, max_bytes: int, what: str,
            max_members: int = MAX_MEMBERS) -> None:
    """Extract a tar stream from a sandbox into ``dest`` (an existing host directory), safely.

    Raises:
        ArchiveRefused: A member is unsafe or a limit is passed; ``dest`` is left unchanged.
    """
    dest = Path(dest)
    tmp = Path(tempfile.mkdtemp(prefix=".lab-extract-", dir=dest))
    root_fd = os.open(tmp, _NOFOLLOW_DIR)
    try:
        budget = _Budget(max_bytes, what, max_members)
        files: dict[str, list[str]] = {}
        reader = io.BufferedReader(_Reader(chunks, max_bytes + HEADER_ALLOWANCE, what), 1 << 16)
        try:
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                for m in tar:
                    budget.take(m)
                    _write_member(tar, m, root_fd, _parts(m.name, what), files, what)
        except tarfile.TarError as e:
            raise ArchiveRefused(f"{what}: not a valid tar stream ({e})") from None
        moves: list[tuple[Path, Path]] = []
        _plan(tmp, dest, moves, what)
        for s, d in moves:
            if os.path.lexists(d) and stat.S_ISDIR(os.lstat(s).st_mode):
                os.unlink(d)  # a file or link where a directory now goes
            os.replace(s, d)
    finally:
        os.close(root_fd)
        shutil.rmtree(tmp, ignore_errors=True)


def checked(chunks: Iterable[bytes], *, max_bytes: int, what: str,
            max_members: int = MAX_MEMBERS) -> Generator[bytes, None, None]:
    """Pass a tar stream through unchanged, refusing it (:class:`ArchiveRefused`, raised by the iterator) as
    soon as a member header shows it goes over ``max_bytes`` or ``max_members`` or names an unsafe path; a
    huge (e.g. sparse) file is refused from its header, before its data is read."""
    out: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=16)  # None: the stream passed
    stop = threading.Event()

    def tee(chunk: bytes) -> None:
        while not stop.is_set():
            try:
                out.put(chunk, timeout=0.1)
                return
            except queue.Full:
                continue
        raise ArchiveRefused(f"{what}: the reader stopped")

    def scan() -> None:
        try:
            budget = _Budget(max_bytes, what, max_members)
            reader = io.BufferedReader(_Reader(chunks, max_bytes + HEADER_ALLOWANCE, what, tee), 1 << 16)
            with tarfile.open(fileobj=reader, mode="r|") as tar:
                for m in tar:
                    budget.take(m)
                    _parts(m.name, what)
            while reader.read(1 << 16):  # the end-of-archive padding
                pass
            result: BaseException | None = None
        except tarfile.TarError as e:
            result = ArchiveRefused(f"{what}: not a valid tar stream ({e})")
        except BaseException as e:  # noqa: BLE001 - handed to the consuming side
            result = e
        while not stop.is_set():
            try:
                out.put(result, timeout=0.1)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=scan, name="lab-archive-check", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(5)
