"""Resource attacks on the Docker sandbox: filling the disk, huge sparse files in snapshots, processes that
outlive their command's timeout, and a network request on an engine without a bridge."""

from __future__ import annotations

import os
import re
import resource

import pytest

from lab.sandbox import SandboxError, SandboxSpec, open_sandbox

pytestmark = pytest.mark.docker


def _host_free() -> int:
    st = os.statvfs("/var/lib/docker" if os.path.isdir("/var/lib/docker") else "/")
    return st.f_bavail * st.f_frsize


def test_workdir_is_size_limited_and_full_is_a_clear_error(docker_api):
    with open_sandbox(SandboxSpec(work_size="64m")) as box:
        free = _host_free()
        r = box.exec("head -c 300M /dev/zero > fill.bin; echo rc=$?; df -k . | tail -1")
        assert "rc=1" in r.stdout and "No space left on device" in r.stderr, r
        assert int(r.stdout.split()[-5]) <= 64 << 10  # df's size column, KiB
        assert free - _host_free() < 128 << 20  # the host lost at most the workdir's size, not 300 MB
        with pytest.raises(SandboxError, match="no space left.*work_size=64m"):
            box.write_file("more.bin", b"x" * (8 << 20))
        assert box.exec("rm fill.bin && echo ok > small && cat small").stdout == "ok\n"
        ref = box.snapshot()  # snapshots keep working on the limited workdir
        box.exec("rm small")
        box.restore(ref)
        assert box.read_file("small") == b"ok\n"
        assert box.exec("df -k . | tail -1").stdout.split()[1] == r.stdout.split()[-5]  # restored: still limited


def test_snapshot_of_a_huge_sparse_file_is_refused_quickly_without_host_memory(docker_api):
    with open_sandbox(SandboxSpec(archive_cap=64 << 20)) as box:
        box.write_file("keep.txt", "kept")
        box.exec("truncate -s 1500M sparse.bin")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with pytest.raises(SandboxError, match="archive_cap=67108864.*sparse.bin"):
            box.snapshot()
        assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 << 10  # KiB
        box.exec("rm sparse.bin")
        ref = box.snapshot()
        box.exec("rm keep.txt")
        box.restore(ref)
        assert box.read_file("keep.txt") == b"kept"


ESCAPES = {
    "setsid": "setsid sleep 1000 & setsid sh -c 'sleep 1001 & sleep 1002' & ",
    "double fork, clean env": "(env -i setsid sh -c 'sleep 1003 &' &) ; nohup sleep 1004 >/dev/null 2>&1 & ",
    "python daemon": "python3 -c 'import os,time\nif os.fork()==0:\n os.setsid()\n if os.fork()==0: time.sleep(1005)' ",
}


# Every process's command line (the image has no ps); the listing itself never matches "sleep.10".
PS = ["python3", "-c", "import os\nfor p in filter(str.isdigit, os.listdir('/proc')):\n"
      "    try: print(open('/proc/%s/cmdline' % p, 'rb').read().replace(b'\\0', b' ').replace(b'\\n', b' ').decode())\n"
      "    except OSError: pass"]


def _sleepers(box) -> list[str]:
    return [line for line in box.exec(PS).stdout.splitlines()
            if re.search(r"sleep.10\d\d", line) and not line.startswith("python3 -I -S")]


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_timeout_kills_everything_the_command_started(docker_api, case):
    with open_sandbox(SandboxSpec()) as box:
        r = box.exec(ESCAPES[case] + "\nsleep 60", timeout=2)
        assert r.timed_out
        assert _sleepers(box) == []


def test_exec_stream_closed_early_kills_escaped_children(docker_api):
    with open_sandbox(SandboxSpec()) as box:
        stream = box.exec_stream("setsid sleep 1010 & echo started; sleep 60")
        assert next(stream) == ("stdout", b"started\n")
        assert any("1010" in line for line in _sleepers(box))
        stream.close()
        import time

        time.sleep(1)
        assert _sleepers(box) == []


def test_network_without_a_bridge_is_refused_not_the_host_network(docker_api):
    if docker_api.networks.list(names=["bridge"]):
        pytest.skip("this engine has a bridge network; the refusal needs one without (dockerd --bridge=none)")
    with pytest.raises(SandboxError, match="bridge"):
        open_sandbox(SandboxSpec(network=True))


def test_network_true_uses_the_bridge_never_the_host(docker_api):
    from lab.sandbox.docker import DockerSandbox

    box = DockerSandbox.__new__(DockerSandbox)
    box.client, box.spec, box.name, box.labels = docker_api, SandboxSpec(network=True), "n", {}
    if not docker_api.networks.list(names=["bridge"]):
        with pytest.raises(SandboxError, match="bridge"):
            box._container_args("img")
    else:
        assert box._container_args("img")[1]["network_mode"] == "bridge"


@pytest.mark.parametrize("bad", ["lots", "-1g", "0", "4x"])
def test_work_size_must_be_a_size(bad):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="work_size"):
        SandboxSpec(work_size=bad)
