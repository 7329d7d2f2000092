"""Docker-only behaviour: isolation, dead containers, images without python3, no leaks (gc after kill -9)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab.sandbox import SandboxError, SandboxSpec, SandboxUnavailable, open_sandbox
from lab.sandbox.gc import LABEL, OWNER, gc_docker
from lab.traces import RunRecorder

pytestmark = pytest.mark.docker
REPO = Path(__file__).resolve().parents[2]


# -- isolation -------------------------------------------------------------------------------------


def test_no_network(dsb):
    probe = ("import socket\n"
             "for host, port in [('1.1.1.1', 53), ('127.0.0.1', 2375), ('deb.debian.org', 80)]:\n"
             "    try:\n"
             "        socket.create_connection((host, port), timeout=2); print('connected', host)\n"
             "    except OSError as e: print('refused', host, type(e).__name__)\n")
    r = dsb.exec(["python3", "-c", probe])
    assert "connected" not in r.stdout and r.stdout.count("refused") == 3, r.stdout + r.stderr
    assert dsb.exec("ls /sys/class/net").stdout.split() == ["lo"]


def test_root_filesystem_is_read_only_workdir_and_tmp_are_writable(dsb):
    for path in ("/usr/bin/evil", "/etc/evil", "/evil", "/home/agent/evil"):
        r = dsb.exec(f"touch {path}")
        assert r.exit_code != 0 and "Read-only file system" in r.stderr, (path, r.stderr)
    assert dsb.exec("touch /tmp/ok && touch ok && rm /tmp/ok ok").ok
    assert "ro," in dsb.exec("grep ' / ' /proc/mounts").stdout + ","


def test_not_root_no_capabilities_no_new_privileges(dsb):
    assert dsb.exec("id -u").stdout.strip() == "1000"
    status = dsb.exec("cat /proc/self/status").stdout
    fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
    assert int(fields["CapEff"].strip(), 16) == 0 and int(fields["CapBnd"].strip(), 16) == 0
    assert fields["NoNewPrivs"].strip() == "1"
    root = dsb.exec("cat /proc/self/status | grep -E '^(CapEff|NoNewPrivs)'", user="root").stdout
    assert "CapEff:\t0000000000000000" in root and "NoNewPrivs:\t1" in root  # even root has nothing


def test_docker_socket_is_not_reachable(dsb):
    r = dsb.exec(["python3", "-c",
                  "import socket, os\n"
                  "print([p for p in ('/var/run/docker.sock', '/run/docker.sock') if os.path.exists(p)])\n"
                  "s = socket.socket(socket.AF_UNIX)\n"
                  "try:\n    s.connect('/var/run/docker.sock'); print('CONNECTED')\n"
                  "except OSError as e: print('no', e.errno)\n"])
    assert r.stdout.startswith("[]") and "CONNECTED" not in r.stdout


def test_limits_are_applied(dsb, docker_api):
    host = docker_api.api.inspect_container(dsb.container.id)["HostConfig"]
    assert host["NetworkMode"] == "none" and host["ReadonlyRootfs"] and host["Init"]
    assert host["CapDrop"] == ["ALL"] and host["SecurityOpt"] == ["no-new-privileges"]
    assert host["Memory"] == 1 << 30 and host["MemorySwap"] == 1 << 30
    assert host["NanoCpus"] == 1_000_000_000 and host["PidsLimit"] == 256
    assert not host.get("DeviceRequests")


def test_fork_bomb_is_stopped_by_the_process_limit(docker_api):
    with open_sandbox(SandboxSpec(pids_limit=64)) as box:
        r = box.exec("(bomb() { bomb | bomb & }; bomb) & exec sleep 30", timeout=3)
        assert r.timed_out and "Cannot fork" in r.stderr  # the limit stopped it; the timeout killed the group
        count = box.exec(["python3", "-c",
                          "import subprocess\nps = []\n"
                          "try:\n    [ps.append(subprocess.Popen(['sleep', '30'])) for _ in range(200)]\n"
                          "except OSError as e: print(len(ps), 'then', e.strerror)\n"
                          "[p.kill() for p in ps]\n"], timeout=60)
        started = int(count.stdout.split()[0])
        assert started < 64 and "Resource temporarily unavailable" in count.stdout, count.stdout
        assert box.exec("echo alive").stdout == "alive\n"


def test_memory_bomb_is_oom_killed_and_the_sandbox_survives(docker_api):
    with open_sandbox(SandboxSpec(memory="128m")) as box:
        r = box.exec(["python3", "-c", "chunks = []\nwhile True: chunks.append(b'x' * (16 << 20))"], timeout=60)
        assert r.exit_code == 137 and not r.timed_out, r
        assert box.exec("echo alive").stdout == "alive\n"


def test_overrides_network_writable_root_and_gpu_request(docker_api):
    from lab.sandbox.docker import DockerSandbox

    with open_sandbox(SandboxSpec(read_only_root=False, user="root", cpus=0.5, memory="256m")) as box:
        assert box.exec("touch /usr/local/made && id -u").stdout == "0\n"
        host = docker_api.api.inspect_container(box.container.id)["HostConfig"]
        assert not host["ReadonlyRootfs"] and host["NanoCpus"] == 500_000_000
        _, host = DockerSandbox._container_args(box, box.spec.image)
    box.spec = SandboxSpec(gpus=2)
    assert DockerSandbox._container_args(box, box.spec.image)[1]["device_requests"][0]["Count"] == 2
    box.spec = SandboxSpec(gpus="all")
    assert DockerSandbox._container_args(box, box.spec.image)[1]["device_requests"][0]["Count"] == -1
    assert "device_requests" not in host and host["network_mode"] == "none"


# -- failure handling ------------------------------------------------------------------------------


def test_container_killed_from_outside_raises_unavailable(docker_api, store):
    rec = RunRecorder.start(store, {"task": "dies"})
    box = open_sandbox(SandboxSpec(), recorder=rec)
    try:
        assert box.exec("true").ok
        docker_api.containers.get(box.container.id).kill()
        with pytest.raises(SandboxUnavailable, match="died"):
            box.exec("echo hello")
        with pytest.raises(SandboxUnavailable):
            box.read_file("anything")
    finally:
        box.close()
    last = store.events(rec.run_id)[-1]
    assert last.attrs["error.type"] == "SandboxUnavailable"


def test_container_removed_from_outside_raises_unavailable(docker_api):
    with open_sandbox(SandboxSpec()) as box:
        docker_api.api.remove_container(box.container.id, force=True)
        with pytest.raises(SandboxUnavailable, match="removed"):
            box.exec("true")
    assert not docker_api.volumes.list(filters={"label": f"{LABEL}={box.id}"})


def test_exec_server_killed_by_a_root_command_restarts(dsb):
    assert "Operation not permitted" in dsb.exec("kill -9 $PPID").stderr  # the agent cannot
    with pytest.raises(SandboxError, match="exec server stopped"):
        dsb.exec("kill -9 $PPID", user="root")  # the parent of the command's shell is the exec server
    assert dsb.exec("echo back").stdout == "back\n"


def test_missing_image_is_a_clear_error(docker_api):
    with pytest.raises(SandboxError, match="lab sandbox build nope"):
        open_sandbox(SandboxSpec(image="expertlab/nope"))


def test_workdir_not_writable_is_a_clear_error(docker_api):
    from lab.traces.store import current_owner

    before = {c["Id"] for c in docker_api.api.containers(all=True, filters={"label": f"{OWNER}={current_owner()}"})}
    with pytest.raises(SandboxError, match="not writable"):
        open_sandbox(SandboxSpec(workdir="/srv/elsewhere"))
    after = {c["Id"] for c in docker_api.api.containers(all=True, filters={"label": f"{OWNER}={current_owner()}"})}
    assert after <= before  # the failed sandbox's container is gone


# -- an image without python3 ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def no_python_image(docker_api):
    dockerfile = (b"FROM expertlab/base:latest\nUSER root\n"
                  b"RUN rm -f /usr/bin/python3* /usr/local/bin/python3*\nUSER agent\n")
    image, _ = docker_api.images.build(fileobj=io.BytesIO(dockerfile), tag="expertlab-test/no-python:latest",
                                       rm=True, network_mode="none", labels={"expertlab.test": "1"})
    yield "expertlab-test/no-python:latest"
    docker_api.images.remove(image.id, force=True)


def test_image_without_python_is_a_clear_error(no_python_image, docker_api):
    from lab.traces.store import current_owner

    with pytest.raises(SandboxError, match="needs python3 3.9 or newer.*|python3.*not found"):
        open_sandbox(SandboxSpec(image=no_python_image))
    left = docker_api.api.containers(all=True, filters={"label": f"{OWNER}={current_owner()}",
                                                        "ancestor": no_python_image})
    assert left == []


# -- no leaks --------------------------------------------------------------------------------------


def _ours(docker_api, owner: str) -> tuple[list, list]:
    cs = docker_api.api.containers(all=True, filters={"label": f"{OWNER}={owner}"})
    vs = docker_api.volumes.list(filters={"label": f"{OWNER}={owner}"})
    return cs, vs


def test_close_removes_container_volume_and_snapshot_images(docker_api):
    from docker.errors import ImageNotFound

    from lab.traces.store import current_owner

    box = open_sandbox(SandboxSpec())
    box.write_file("x", "1")
    ref = box.snapshot()
    assert docker_api.images.get(ref.ref).labels[OWNER] == current_owner()
    cs, vs = _ours(docker_api, current_owner())
    assert box.container.id in [c["Id"] for c in cs] and vs
    box.close()
    cs, _ = _ours(docker_api, current_owner())
    assert box.container.id not in [c["Id"] for c in cs]
    with pytest.raises(ImageNotFound):
        docker_api.images.get(ref.ref)


def test_exception_and_ctrl_c_close_the_sandbox(docker_api):
    with pytest.raises(KeyboardInterrupt):
        with open_sandbox(SandboxSpec()) as box:
            raise KeyboardInterrupt
    assert box.closed
    import docker.errors

    with pytest.raises(docker.errors.NotFound):
        docker_api.containers.get(box.container.id)


_CHILD = r"""
import sys, time
from lab.sandbox import SandboxSpec, open_sandbox
from lab.traces.store import current_owner
boxes = [open_sandbox(SandboxSpec()) for _ in range(2)]
boxes[0].write_file("f", "x"); boxes[0].snapshot()
local = open_sandbox(SandboxSpec(backend="local"))
print(current_owner(), local.root, flush=True)
time.sleep(600)
"""


def test_kill_9_leaves_nothing_after_gc(docker_api, tmp_path):
    env = {**os.environ, "LAB_SANDBOX_DIR": str(tmp_path / "local")}
    child = subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE, text=True, cwd=REPO, env=env)
    try:
        owner, local_root = child.stdout.readline().split()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    cs, vs = _ours(docker_api, owner)
    assert len(cs) >= 2 and len(vs) == 2 and Path(local_root).is_dir()  # left behind (with a snapshot helper)
    result = subprocess.run([str(REPO / ".venv/bin/lab"), "sandbox", "gc"], capture_output=True, text=True,
                            env=env, cwd=REPO)
    assert result.returncode == 0, result.stderr
    cs, vs = _ours(docker_api, owner)
    assert cs == [] and vs == []
    assert not docker_api.api.images(all=True, filters={"label": f"{OWNER}={owner}"})
    assert not Path(local_root).exists()
    assert "removed container" in result.stdout and "removed local dir" in result.stdout


def test_gc_keeps_sandboxes_of_live_processes(dsb, docker_api):
    report = gc_docker(docker_api)
    assert dsb.name not in report.containers and dsb.container.name == dsb.name
    assert dsb.exec("true").ok


_EXITS = r"""
from lab.sandbox import SandboxSpec, open_sandbox
from lab.traces.store import current_owner
box = open_sandbox(SandboxSpec())
box.exec("true")
print(current_owner(), flush=True)
raise SystemExit(0)  # never closed: atexit removes it
"""


def test_normal_exit_without_close_removes_the_sandbox(docker_api):
    r = subprocess.run([sys.executable, "-c", _EXITS], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert _ours(docker_api, r.stdout.strip()) == ([], [])
