"""Attacks from inside a local (bubblewrap) sandbox on the host: capabilities, mounts, the Docker socket,
the uid it runs as, seccomp, and processes that try to outlive a timeout."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path

import pytest
from local_fixtures import box, bwrap_spec  # noqa: F401 - fixtures

from lab.sandbox import SandboxError, SandboxSpec, open_sandbox
from lab.sandbox.local import UnisolatedWarning


def _status(sb, field: str, **kw) -> str:
    line = sb.exec(f"grep '^{field}:' /proc/self/status", **kw).stdout
    return line.split(":", 1)[1].strip()


@pytest.mark.parametrize("user", [None, "root"])
def test_no_capabilities_inside(box, user):
    for field in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        assert int(_status(box, field, user=user), 16) == 0, f"{field} is not empty (user={user})"
    assert _status(box, "NoNewPrivs", user=user) == "1"


def test_spec_user_is_the_default_and_root_inside_has_no_power():
    with open_sandbox(bwrap_spec(user="root")) as sb:
        assert sb.exec("id -u").stdout.strip() == "0" and int(_status(sb, "CapEff"), 16) == 0
        assert sb.exec("id -un", user="agent").stdout.strip() == "agent"
        assert sb.exec("touch /etc/x").exit_code != 0 and sb.exec("chown 1000 /work").exit_code != 0
        assert os.stat(sb.host_workdir).st_uid != 0 or os.geteuid() != 0


def test_remount_of_the_host_root_fails(box):
    probe = Path("/lab-remount-probe")
    try:
        r = box.exec(f"mount -o remount,rw,bind / && touch {probe}; echo rc=$?")
        assert not probe.exists(), f"the sandbox remounted / and wrote {probe} on the host"
        assert "rc=0" not in r.stdout
    finally:
        probe.unlink(missing_ok=True)


def test_docker_socket_and_run_are_hidden(box):
    if not Path("/var/run/docker.sock").exists():
        pytest.skip("no Docker socket on this host to hide")
    assert box.exec("test -e /var/run/docker.sock || test -e /run/docker.sock").exit_code == 1
    r = box.exec("ls -A /run /var/run")
    assert "docker" not in r.stdout and "containerd" not in r.stdout
    talk = ("import socket; s = socket.socket(socket.AF_UNIX); s.settimeout(2); "
            "s.connect('/var/run/docker.sock'); s.sendall(b'GET /version HTTP/1.0\\r\\n\\r\\n'); print(s.recv(99))")
    r = box.exec(["python3", "-c", talk])
    assert r.exit_code != 0 and "HTTP" not in r.stdout


def test_commands_run_as_a_non_root_uid_inside_and_on_the_host(box):
    assert box.exec("id -u").stdout.strip() != "0"
    assert box.exec("id -un").exit_code == 0, "the sandbox user has no name"
    box.exec("echo x > made-inside")
    made = box.exec("stat -c %u made-inside").stdout.strip()
    assert made != "0"
    host = box.host_workdir / "made-inside"
    assert os.stat(host, follow_symlinks=False).st_uid != 0, "the sandbox's files belong to root on the host"
    assert box.exec("cat /etc/shadow").exit_code != 0


def test_seccomp_filter_is_active(box):
    from lab.sandbox.local import seccomp_program

    if seccomp_program() is None:
        pytest.skip("libseccomp is not available here: no seccomp filter")
    assert _status(box, "Seccomp") == "2"
    ptrace_me = "import ctypes, sys; sys.exit(0 if ctypes.CDLL(None).ptrace(0, 0, 0, 0) == 0 else 1)"
    assert box.exec(["python3", "-c", ptrace_me]).exit_code == 1, "ptrace(PTRACE_TRACEME) was allowed"
    for attack in ("unshare -U true", "unshare -m true", "python3 -c 'import os; os.unshare(os.CLONE_NEWNS)'"):
        assert box.exec(attack).exit_code != 0, attack


@pytest.mark.parametrize("isolated", [True, False], ids=["bwrap", "plain"])
def test_setsid_children_die_with_a_timed_out_command(isolated):
    spec = bwrap_spec() if isolated else SandboxSpec(backend="local", bwrap=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnisolatedWarning)  # that it warns is the conformance suite's concern
        sb = open_sandbox(spec)
    with sb:
        cmd = ("setsid sh -c 'sleep 1.5; touch escaped' </dev/null >/dev/null 2>&1 & "
               "nohup setsid sh -c 'sleep 1.5; touch escaped2' </dev/null >/dev/null 2>&1 & sleep 30")
        r = sb.exec(cmd, timeout=0.5)
        assert r.timed_out
        time.sleep(2.5)
        left = sb.exec("ls escaped escaped2 2>/dev/null").stdout
        assert left == "", f"a setsid child of the timed-out command survived: {left!r}"


def test_process_limit_is_enforced_as_root():
    if os.geteuid() != 0:
        pytest.skip("the per-sandbox process limit needs the harness to run as root (its own host uid)")
    with open_sandbox(bwrap_spec(pids_limit=20)) as sb:
        r = sb.exec("for i in $(seq 40); do sleep 5 & done; wait", timeout=20)
        assert "fork" in r.stderr.lower() or "resource" in r.stderr.lower() or r.exit_code != 0


def test_memory_limit_applies_to_each_process():
    with open_sandbox(bwrap_spec(memory="256m")) as sb:
        r = sb.exec(["python3", "-c", "b = bytearray(1 << 30); print('allocated')"])
        assert r.exit_code != 0 and "allocated" not in r.stdout and "MemoryError" in r.stderr
        assert sb.exec(["python3", "-c", "b = bytearray(64 << 20); print(len(b))"]).stdout.strip() == str(64 << 20)


def test_workdir_is_the_specs_and_hides_the_hosts(box, tmp_path):
    assert box.workdir == "/work" and box.exec("pwd").stdout.strip() == "/work"
    assert box.exec("ls -A /work").stdout == ""
    with pytest.raises(SandboxError, match="system directories"):
        open_sandbox(bwrap_spec(workdir="/usr/local/work"))
    with open_sandbox(bwrap_spec(workdir="/home/agent")) as sb:
        assert sb.exec("pwd; ls -A /home").stdout == "/home/agent\nagent\n"


def test_the_harness_files_are_hidden(box):
    here = Path(__file__).resolve()
    assert box.exec(f"test -e '{here}'").exit_code == 1, "the harness's repository is visible inside"
    for path in (here.parents[2], Path.cwd(), Path.home(), Path("/home"), Path("/root")):
        if not str(path).startswith("/tmp"):
            assert box.exec(f"ls -A '{path}' 2>/dev/null").stdout == "", f"{path} is visible inside"
