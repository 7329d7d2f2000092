"""Attacks on the local backend's file operations: links and races that try to make the harness (root in CI)
read or write host files outside the sandbox."""

from __future__ import annotations

import os
import threading
import time

import pytest
from local_fixtures import box, outside  # noqa: F401 - fixtures

from lab.sandbox import SandboxError, beneath


@pytest.fixture(autouse=True, params=["openat2", "nofollow-walk"])
def resolver(request, monkeypatch):
    """Every test runs with the kernel's openat2 and with the component walk used where it is missing."""
    if request.param == "nofollow-walk":
        monkeypatch.setattr(beneath, "_have_openat2", False)
    return request.param


def test_copy_out_twice_cannot_write_through_a_planted_link(box, outside, tmp_path):
    dest = tmp_path / "dest"
    box.exec(f"mkdir d && ln -s {outside} d/x")
    try:
        box.copy_out("d", dest)
    except SandboxError:
        pass
    box.exec("rm d/x && mkdir d/x && echo pwned > d/x/pwn")
    try:
        box.copy_out("d", dest)
    except SandboxError:
        pass
    assert not (outside / "pwn").exists(), "copy_out wrote into a host directory outside its destination"
    assert list(outside.iterdir()) == []


def test_copy_out_never_recreates_links_that_leave_the_destination(box, tmp_path):
    dest = tmp_path / "dest"
    box.exec("mkdir -p d/sub && echo a > d/a && ln -s /etc/passwd d/pw && ln -s ../../x d/sub/up")
    with pytest.raises(SandboxError, match="link"):
        box.copy_out("d", dest)
    assert not (dest / "d").exists(), "a refused copy_out left a half-copied tree"
    box.exec("rm d/pw d/sub/up && ln -s a d/inside && ln -s ../a d/sub/up-inside")
    box.copy_out("d", dest)
    assert (dest / "d" / "a").read_text() == "a\n"
    for link in (dest / "d" / "inside", dest / "d" / "sub" / "up-inside"):
        if link.is_symlink():
            assert os.path.realpath(link).startswith(str(dest / "d") + "/")
    box.exec("ln -sfn /etc/passwd top")
    with pytest.raises((SandboxError, PermissionError)):
        box.copy_out("top", dest)
    assert not (dest / "top").exists() or not (dest / "top").is_symlink()
    assert not (dest / "top").exists() or (dest / "top").read_bytes() != open("/etc/passwd", "rb").read()


def test_read_file_and_copy_out_do_not_follow_links_to_host_files(box, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("host secret")
    secret.chmod(0o600)
    box.exec(f"ln -s {secret} s && ln -s /etc/shadow shadow")
    for path in ("s", "shadow"):
        with pytest.raises((PermissionError, FileNotFoundError, SandboxError)):
            box.read_file(path)
    with pytest.raises((PermissionError, SandboxError)):
        box.copy_out("s", tmp_path / "out")
    assert not (tmp_path / "out" / "s").exists()


def test_read_file_outside_the_workdir_has_the_sandboxs_rights_not_the_harnesss(box):
    with pytest.raises(PermissionError):
        box.read_file("/etc/shadow")
    assert b"agent:x:1000:1000" in box.read_file("/etc/passwd")
    with pytest.raises(FileNotFoundError):
        box.read_file("/var/run/docker.sock")
    with pytest.raises(IsADirectoryError):
        box.read_file("/etc")


def test_fifo_does_not_hang_the_harness(box, tmp_path):
    box.exec("mkfifo pipe && mkdir d && mkfifo d/pipe")
    done = threading.Event()
    errors: list[BaseException] = []

    def attempt() -> None:
        for op in (lambda: box.read_file("pipe"), lambda: box.copy_out("d", tmp_path / "o")):
            try:
                op()
            except (SandboxError, OSError) as e:
                errors.append(e)
        done.set()

    threading.Thread(target=attempt, daemon=True).start()
    assert done.wait(10), "reading a FIFO from the sandbox blocked the harness"
    assert len(errors) == 2


RACE_SECONDS = 3.0


def _race(box, outside, op) -> tuple[int, int]:
    """Run ``op(i)`` from the host for a few seconds while the sandbox swaps ``w`` between a directory and a
    symlink to ``outside``; returns (attempts, entries that landed in ``outside``)."""
    swap = (f"end=$(( $(date +%s) + {int(RACE_SECONDS) + 2} )); while [ $(date +%s) -lt $end ]; do "
            f"for _ in 1 2 3 4 5 6 7 8 9 10; do rm -rf w; mkdir w; rm -rf w; ln -s {outside} w; done; done")
    t = threading.Thread(target=box.exec, args=(swap,), kwargs={"timeout": RACE_SECONDS + 10}, daemon=True)
    t.start()
    time.sleep(0.3)
    attempts, end = 0, time.monotonic() + RACE_SECONDS
    while time.monotonic() < end:
        try:
            op(attempts)
        except (OSError, SandboxError):
            pass
        attempts += 1
    t.join()
    return attempts, len(list(outside.iterdir()))


def test_write_file_race_never_lands_outside(box, outside):
    attempts, landed = _race(box, outside, lambda i: box.write_file(f"w/f{i}", b"x"))
    assert attempts > 100
    assert landed == 0, f"{landed} of {attempts} writes landed outside the sandbox"


def test_copy_in_race_never_lands_outside(box, outside, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "f").write_text("x")

    def op(i: int) -> None:
        box.copy_in(src, "w")

    attempts, landed = _race(box, outside, op)
    assert attempts > 20
    assert landed == 0, f"{landed} of {attempts} copies landed outside the sandbox"
