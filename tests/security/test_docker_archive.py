"""Hostile archives and links across the Docker sandbox's copy_in / copy_out, and the archive checker itself."""

from __future__ import annotations

import io
import os
import resource
import tarfile
from pathlib import Path

import pytest

from lab.sandbox import SandboxError, SandboxSpec, open_sandbox

pytestmark = pytest.mark.docker


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size, info.mode = kind, link, size, 0o644
    return info


def _chunks(data: bytes, n: int = 700):
    return (data[i:i + n] for i in range(0, len(data), n))


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


HOSTILE = {
    "absolute path": _tar((_info("out/ok"), b"ok"), (_info("/tmp/lab-abs-escape"), b"x")),
    "dot-dot": _tar((_info("out/ok"), b"ok"), (_info("out/../../lab-dotdot-escape"), b"x")),
    "absolute symlink": _tar((_info("out/ok"), b"ok"), (_info("out/pw", tarfile.SYMTYPE, "/etc/passwd"), None)),
    "escaping symlink": _tar((_info("out/up", tarfile.SYMTYPE, "../.."), None),),
    "write through a link": _tar((_info("out/d", tarfile.SYMTYPE, "."), None), (_info("out/d/f"), b"x")),
    "link then file of its name": _tar((_info("out/l", tarfile.SYMTYPE, "ok"), None), (_info("out/l"), b"x")),
    "hard link outside": _tar((_info("out/h", tarfile.LNKTYPE, "/etc/passwd"), None),),
    "hard link to a non-member": _tar((_info("out/h", tarfile.LNKTYPE, "out/missing"), None),),
    "device": _tar((_info("out/ok"), b"ok"), (_info("out/sda", tarfile.BLKTYPE), None)),
    "fifo": _tar((_info("out/p", tarfile.FIFOTYPE), None),),
    "declared size over the cap": _tar((_info("out/ok"), b"ok"), (_info("out/big"), b"z" * 5000)),
    "too many members": _tar(*[(_info(f"out/f{i}"), b"") for i in range(60)]),
    "not a tar": b"\x00garbage" * 200,
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_extract_refuses_hostile_archives_and_leaves_the_destination_unchanged(case, tmp_path):
    from lab.sandbox.archive import ArchiveRefused, extract

    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    with pytest.raises(ArchiveRefused):
        extract(_chunks(HOSTILE[case]), dest, max_bytes=4096, what="test", max_members=50)
    assert _tree(dest) == ["keep.txt"] and (dest / "keep.txt").read_text() == "mine"
    assert not Path("/tmp/lab-abs-escape").exists() and not (tmp_path / "lab-dotdot-escape").exists()


def test_extract_keeps_safe_links_files_modes_and_never_follows_host_links(tmp_path):
    from lab.sandbox.archive import extract

    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "out").symlink_to(outside)  # left by an earlier copy: must be replaced, not written through
    suid = _info("out/run.sh")
    suid.mode = 0o4777
    data = _tar((_info("out", tarfile.DIRTYPE), None), (_info("out/a.txt"), b"a"), (suid, b"#!/bin/sh\n"),
                (_info("out/sub", tarfile.DIRTYPE), None), (_info("out/sub/link", tarfile.SYMTYPE, "../a.txt"), None),
                (_info("out/hard", tarfile.LNKTYPE, "out/a.txt"), None))
    extract(_chunks(data), dest, max_bytes=4096, what="test")
    assert list(outside.iterdir()) == []
    assert not (dest / "out").is_symlink() and (dest / "out" / "sub" / "link").read_text() == "a"
    assert os.readlink(dest / "out" / "sub" / "link") == "../a.txt" and (dest / "out" / "hard").read_text() == "a"
    assert (dest / "out" / "run.sh").stat().st_mode & 0o7777 == 0o755  # no setuid, no group/other write
    assert [p.name for p in dest.iterdir()] == ["out"]  # no temporary directory left


def test_checked_stream_refuses_a_huge_member_from_its_header_before_its_data():
    from lab.sandbox.archive import ArchiveRefused, checked

    head = _tar((_info("work/a"), b"a"), (_info("work/sparse", size=1 << 40), None))[:4096]
    pulled = []

    def source():
        yield head
        for _ in range(1000):  # 1 TB "of data" that must never be asked for
            pulled.append(1)
            yield b"\0" * (1 << 20)

    with pytest.raises(ArchiveRefused, match="sparse"):
        for _ in checked(source(), max_bytes=1 << 20, what="snapshot"):
            pass
    assert len(pulled) < 20


# -- end to end, against a real sandbox ----------------------------------------------------------------


@pytest.fixture(scope="module")
def box(docker_api):
    with open_sandbox(SandboxSpec()) as b:
        yield b


def test_copy_out_refuses_links_leaving_the_sandbox_and_leaves_nothing_behind(box, tmp_path):
    box.exec("mkdir -p leak/sub && for i in 1 2 3; do echo $i > leak/f$i; done && ln -s /etc/passwd leak/sub/pw")
    with pytest.raises(SandboxError, match="points outside"):
        box.copy_out("leak", tmp_path / "out")
    assert _tree(tmp_path / "out") == []
    box.exec("rm leak/sub/pw && ln -s ../../../../../../root leak/sub/up")
    with pytest.raises(SandboxError, match="points outside"):
        box.copy_out("leak", tmp_path / "out")
    assert _tree(tmp_path / "out") == []
    box.exec("rm leak/sub/up && ln -s ../f1 leak/sub/inside")  # a link that stays inside is kept
    box.copy_out("leak", tmp_path / "out")
    assert os.readlink(tmp_path / "out" / "leak" / "sub" / "inside") == "../f1"
    assert (tmp_path / "out" / "leak" / "sub" / "inside").read_text() == "1\n"


def test_copy_out_symlink_then_directory_of_the_same_name_stays_in_the_destination(box, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    box.exec("mkdir -p twice && ln -sfn f twice/x && echo f > twice/f")
    box.copy_out("twice", tmp_path / "out")
    (tmp_path / "out" / "twice" / "x").unlink()
    (tmp_path / "out" / "twice" / "x").symlink_to(outside)  # as if the first copy had left a host link
    box.exec("rm twice/x && mkdir twice/x && echo evil > twice/x/planted")
    box.copy_out("twice", tmp_path / "out")
    assert list(outside.iterdir()) == [] and (tmp_path / "out" / "twice" / "x" / "planted").read_text() == "evil\n"


def test_copy_out_of_a_large_sparse_file_is_refused_quickly_without_host_memory(box, tmp_path):
    box.exec("truncate -s 1500M huge.bin")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(SandboxError, match=r"huge.bin.*archive_cap|archive_cap.*huge.bin"):
        box.copy_out("huge.bin", tmp_path / "out")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 << 10  # KiB: under 200 MiB more
    assert _tree(tmp_path / "out") == []
    assert box.exec("rm huge.bin && echo alive").stdout == "alive\n"


def test_copy_in_keeps_links_inside_the_tree_and_refuses_links_out(box, tmp_path):
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "data.txt").write_text("data")
    (src / "alias").symlink_to("d/data.txt")
    box.copy_in(src, "in1")
    assert box.exec("readlink in1/alias && cat in1/alias").stdout == "d/data.txt\ndata"
    (src / "secret").symlink_to("/etc/shadow")
    with pytest.raises(SandboxError, match="outside"):
        box.copy_in(src, "in2")
    assert box.exec("test -e in2 || echo absent").stdout == "absent\n"
    (src / "secret").unlink()
    (src / "up").symlink_to("../../..")
    with pytest.raises(SandboxError, match="outside"):
        box.copy_in(src, "in3")
