"""File operations that cannot leave a directory, however its contents change meanwhile.

The local backend's harness runs with more rights than the sandbox (root in CI) and works on directories the
sandbox writes to at the same time. Every path here is resolved relative to an open directory descriptor by
the kernel (``openat2`` with ``RESOLVE_BENEATH``: links are followed only while they stay beneath it; ``..``
never climbs out), so swapping a directory for a symlink mid-operation cannot redirect a read or a write.
Where ``openat2`` is missing (Linux < 5.6) each component is opened with ``O_NOFOLLOW`` instead, which
refuses every symlink. Trees are copied descriptor by descriptor; FIFOs, sockets and devices are never opened.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import stat
from pathlib import Path
from typing import Literal

from lab.sandbox.base import SandboxError

_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_BENEATH = 0x08
_SYS_openat2 = 437  # the same number on every Linux architecture


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_have_openat2: bool | None = None

DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
Owner = tuple[int, int] | None
"""``(uid, gid)`` given to everything created, or ``None`` to leave ownership to the caller's uid."""


class LinkEscape(SandboxError, PermissionError):
    """A path or a copied symlink leads outside the directory it must stay in (refused)."""


def _openat2(dir_fd: int, path: str, flags: int, mode: int) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, mode if flags & os.O_CREAT else 0, _RESOLVE_BENEATH | _RESOLVE_NO_MAGICLINKS)
    for _ in range(16):  # EAGAIN: a rename raced with ".." resolution; the kernel asks to retry
        fd: int = _libc.syscall(_SYS_openat2, dir_fd, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how))
        if fd >= 0:
            return fd
        err = ctypes.get_errno()
        if err != errno.EAGAIN:
            if err == errno.EXDEV:
                raise LinkEscape(errno.EACCES, "leads outside the sandbox (symlink or '..')", path)
            raise OSError(err, os.strerror(err), path)
    raise OSError(errno.EAGAIN, "path kept changing while it was opened", path)


def _walk_nofollow(dir_fd: int, path: str, flags: int, mode: int) -> int:
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LinkEscape(errno.EACCES, "'..' is not allowed here", path)
    fd = os.open(".", DIR, dir_fd=dir_fd)
    try:
        for name in parts[:-1]:
            nxt = os.open(name, DIR | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = nxt
        return os.open(parts[-1] if parts else ".", flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=fd)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise LinkEscape(errno.EACCES, "symlinks are not followed on this kernel (no openat2)", path) from None
        raise
    finally:
        os.close(fd)


def open_beneath(dir_fd: int, path: str, flags: int, mode: int = 0o644) -> int:
    """Open ``path`` (relative to the directory ``dir_fd``) without ever resolving outside that directory.

    Raises:
        LinkEscape: A symlink or ``..`` leads outside ``dir_fd``.
        OSError: As ``os.open`` would (FileNotFoundError, NotADirectoryError...).
    """
    global _have_openat2
    path = path.lstrip("/") or "."
    if _have_openat2 is not False:
        try:
            return _openat2(dir_fd, path, flags, mode)
        except OSError as e:
            if e.errno not in (errno.ENOSYS, errno.EPERM) or _have_openat2:
                raise
            _have_openat2 = False  # no openat2 (or a seccomp filter forbids it): the strict walk below
        else:
            _have_openat2 = True
    return _walk_nofollow(dir_fd, path, flags, mode)


def _chown(fd: int, owner: Owner) -> None:
    if owner is not None:
        os.fchown(fd, *owner)


def open_dir(dir_fd: int, path: str, *, create: bool = False, owner: Owner = None) -> int:
    """Open the directory ``path`` beneath ``dir_fd``, creating missing ones (mode 0755, given ``owner``)."""
    try:
        return open_beneath(dir_fd, path, DIR)
    except FileNotFoundError:
        if not create:
            raise
    parts = [p for p in path.split("/") if p not in ("", ".")]
    fd = os.dup(dir_fd)
    try:
        for i, name in enumerate(parts):
            try:
                nxt = open_beneath(dir_fd, "/".join(parts[: i + 1]), DIR)
            except FileNotFoundError:
                try:
                    os.mkdir(name, 0o755, dir_fd=fd)
                except FileExistsError:
                    pass
                nxt = open_beneath(fd, name, DIR)  # just made (or raced): must be a real directory now
                _chown(nxt, owner)
            os.close(fd)
            fd = nxt
        return os.dup(fd)
    finally:
        os.close(fd)


def _open_regular(dir_fd: int | None, path: str, flags: int, mode: int = 0o644, *, beneath: bool = True) -> int:
    """Open a regular file; FIFOs, sockets and devices are refused without blocking on them."""
    flags |= os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    if not beneath:
        fd = os.open(path, flags, mode, dir_fd=dir_fd)
    elif dir_fd is None:
        raise ValueError(f"{path}: opening beneath a directory needs its descriptor")
    else:
        fd = open_beneath(dir_fd, path, flags, mode)
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode):
        os.set_blocking(fd, True)
        return fd
    os.close(fd)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", path)
    raise PermissionError(errno.EACCES, "not a regular file (FIFO, socket or device)", path)


def read_file(dir_fd: int | None, path: str, cap: int, *, beneath: bool = True) -> bytes:
    """Read the regular file ``path`` beneath ``dir_fd`` whole; files over ``cap`` bytes raise ``EFBIG``.

    ``beneath=False`` resolves ``path`` as ``os.open`` would (for host files the sandbox cannot change).
    """
    try:
        fd = _open_regular(dir_fd, path, os.O_RDONLY, beneath=beneath)
    except OSError as e:
        if e.errno == errno.ENXIO:  # a FIFO without a writer, refused by O_NONBLOCK
            raise PermissionError(errno.EACCES, "not a regular file (FIFO, socket or device)", path) from None
        raise
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(fd).st_size
        if size > cap:
            raise OSError(errno.EFBIG, f"file is {size} bytes, over the read limit of {cap}", path)
        data = f.read(cap + 1)
    if len(data) > cap:
        raise OSError(errno.EFBIG, f"file grew past the read limit of {cap} bytes", path)
    return data


def write_file(dir_fd: int, path: str, data: bytes, owner: Owner = None) -> None:
    """Write ``data`` to ``path`` beneath ``dir_fd``, creating parent directories."""
    parent, _, name = path.strip("/").rpartition("/")
    if not name:
        raise IsADirectoryError(errno.EISDIR, "is a directory", path)
    pfd = open_dir(dir_fd, parent, create=True, owner=owner)
    try:
        try:
            fd = _open_regular(pfd, name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        except OSError as e:
            if e.errno == errno.ENXIO:
                raise PermissionError(errno.EACCES, "not a regular file (FIFO)", path) from None
            raise
    finally:
        os.close(pfd)
    with os.fdopen(fd, "wb") as f:
        _chown(fd, owner)
        f.write(data)


LinkPolicy = Literal["keep", "inside"]
"""``keep``: recreate symlinks as they are; ``inside``: only relative ones that stay inside the copied tree
(anything else raises :class:`LinkEscape`)."""


def _link_stays_inside(target: str, depth: int) -> bool:
    """Whether a relative symlink ``depth`` directories below the copied root stays inside it, read literally."""
    if target.startswith("/") or not target:
        return False
    level = depth
    for part in target.split("/"):
        if part == "..":
            level -= 1
            if level < 0:
                return False
        elif part not in ("", "."):
            level += 1
    return True


def remove(name: str, dst_fd: int) -> None:
    """Remove ``name`` from ``dst_fd`` whatever it is, without following it."""
    try:
        st = os.stat(name, dir_fd=dst_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dst_fd)
    else:
        os.unlink(name, dir_fd=dst_fd)


def copy_tree(src_fd: int, dst_fd: int, *, owner: Owner = None, links: LinkPolicy = "keep",
              special: Literal["refuse", "skip"] = "refuse", mask: int = 0o1777, where: str = "",
              _depth: int = 0) -> None:
    """Copy the contents of directory ``src_fd`` into directory ``dst_fd``, merging with what is there.

    Nothing is followed on either side: an entry of ``dst_fd`` in the way of a different kind of entry is
    replaced, not written through. File modes keep their permission bits (never set-id bits).

    Args:
        src_fd: The directory copied from.
        dst_fd: The directory copied into.
        owner: Owner of everything created.
        links: What to do with symlinks (see :data:`LinkPolicy`).
        special: FIFOs, sockets and devices are refused (``PermissionError``) or skipped.
        mask: Permission bits kept from the source.
        where: Path of ``src_fd`` for error messages.

    Raises:
        LinkEscape: A symlink leaves the tree under ``links="inside"``.
        PermissionError: A special file under ``special="refuse"``.
    """
    with os.scandir(src_fd) as it:
        names = sorted(e.name for e in it)
    for name in names:
        here = f"{where}/{name}" if where else name
        st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(name, dir_fd=src_fd)
            if links == "inside" and not _link_stays_inside(target, _depth):
                raise LinkEscape(errno.EACCES, f"symlink to {target!r} leaves the copied tree", here)
            remove(name, dst_fd)
            os.symlink(target, name, dir_fd=dst_fd)
            if owner is not None:
                os.chown(name, *owner, dir_fd=dst_fd, follow_symlinks=False)
        elif stat.S_ISDIR(st.st_mode):
            sfd = os.open(name, DIR | os.O_NOFOLLOW, dir_fd=src_fd)
            try:
                try:
                    dfd = os.open(name, DIR | os.O_NOFOLLOW, dir_fd=dst_fd)
                except OSError:
                    remove(name, dst_fd)
                    os.mkdir(name, 0o700, dir_fd=dst_fd)
                    dfd = os.open(name, DIR | os.O_NOFOLLOW, dir_fd=dst_fd)
                try:
                    copy_tree(sfd, dfd, owner=owner, links=links, special=special, mask=mask, where=here,
                              _depth=_depth + 1)
                    os.fchmod(dfd, stat.S_IMODE(os.fstat(sfd).st_mode) & mask)
                    _chown(dfd, owner)
                finally:
                    os.close(dfd)
            finally:
                os.close(sfd)
        elif stat.S_ISREG(st.st_mode):
            sfd = _open_regular(src_fd, name, os.O_RDONLY | os.O_NOFOLLOW)
            try:
                remove(name, dst_fd)
                dfd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                              dir_fd=dst_fd)
                try:
                    _copy_bytes(sfd, dfd)
                    os.fchmod(dfd, stat.S_IMODE(os.fstat(sfd).st_mode) & mask & 0o777)
                    _chown(dfd, owner)
                finally:
                    os.close(dfd)
            finally:
                os.close(sfd)
        elif special == "refuse":
            raise PermissionError(errno.EACCES, "not a regular file, directory or symlink (FIFO, socket or device)",
                                  here)


def _copy_bytes(src: int, dst: int) -> None:
    while True:
        try:
            n = os.copy_file_range(src, dst, 1 << 30)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                raise
            break
        if n == 0:
            return
    while chunk := os.read(src, 1 << 20):
        os.write(dst, chunk)


def copy_out(src_fd: int, name: str, dst_fd: int, *, where: str) -> None:
    """Copy the open file or directory ``src_fd`` from a sandbox as ``name`` in the new directory ``dst_fd``.

    Symlinks must stay inside the copied tree; FIFOs, sockets and devices are refused; group and other
    write bits are dropped.
    """
    st = os.fstat(src_fd)
    if stat.S_ISDIR(st.st_mode):
        os.mkdir(name, 0o700, dir_fd=dst_fd)
        dfd = os.open(name, DIR | os.O_NOFOLLOW, dir_fd=dst_fd)
        try:
            copy_tree(src_fd, dfd, links="inside", mask=0o755, where=where)
            os.fchmod(dfd, stat.S_IMODE(st.st_mode) & 0o755)
        finally:
            os.close(dfd)
    elif stat.S_ISREG(st.st_mode):
        dfd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                      dir_fd=dst_fd)
        try:
            os.set_blocking(src_fd, True)
            _copy_bytes(src_fd, dfd)
            os.fchmod(dfd, stat.S_IMODE(st.st_mode) & 0o755)
        finally:
            os.close(dfd)
    else:
        raise PermissionError(errno.EACCES, "not a regular file or directory (FIFO, socket or device)", where)


def check_links_inside(root: str) -> None:
    """Raise :class:`LinkEscape` when a symlink under ``root`` (a tree only this process writes) resolves
    outside it, chains of links included."""
    top = os.path.realpath(root)
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) and not os.path.realpath(path).startswith(top + os.sep):
                rel = os.path.relpath(path, os.path.dirname(root))
                raise LinkEscape(errno.EACCES, f"symlink to {os.readlink(path)!r} leaves the copied tree", rel)


def move_into(stage: str | Path, dest: str | Path) -> None:
    """Move every entry of ``stage`` into ``dest`` (same filesystem), merging directories; an entry of ``dest``
    in the way of a different kind of entry is replaced, never followed."""
    sfd, dfd = os.open(stage, DIR), os.open(dest, DIR)
    try:
        _move(sfd, dfd)
    finally:
        os.close(sfd)
        os.close(dfd)


def _move(sfd: int, dfd: int) -> None:
    for name in os.listdir(sfd):
        src_dir = stat.S_ISDIR(os.stat(name, dir_fd=sfd, follow_symlinks=False).st_mode)
        try:
            dst_dir = stat.S_ISDIR(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            os.rename(name, name, src_dir_fd=sfd, dst_dir_fd=dfd)
            continue
        if src_dir and dst_dir:
            a = os.open(name, DIR | os.O_NOFOLLOW, dir_fd=sfd)
            b = os.open(name, DIR | os.O_NOFOLLOW, dir_fd=dfd)
            try:
                _move(a, b)
            finally:
                os.close(a)
                os.close(b)
        else:
            remove(name, dfd)
            os.rename(name, name, src_dir_fd=sfd, dst_dir_fd=dfd)
