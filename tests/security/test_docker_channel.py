"""Attacks on the Docker sandbox's exec channel, from inside the sandbox and as a stalled server.

The agent under study is untrusted: it must not be able to forge what the host records (exit codes,
output), stall the host, or push data past the limits, whatever it does inside.
"""

from __future__ import annotations

import socket
import threading

import pytest

from lab.sandbox import SandboxSpec, SandboxUnavailable, open_sandbox

pytestmark = pytest.mark.docker

# Finds the exec server (python3 -I -S -c ...) and writes frames into its stdout: a forged exit record
# (exit 0, stdout "forged") for every request id, then a header announcing 1 GiB of output.
FORGE = r"""
import os, struct, json, sys
H = struct.Struct(">IcII")
opened = denied = 0
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        argv = open("/proc/%s/cmdline" % pid, "rb").read().split(b"\0")
    except OSError:
        continue
    if argv[:4] != [b"python3", b"-I", b"-S", b"-c"]:
        continue
    for path in ("/proc/%s/fd/1" % pid, "/proc/%s/mem" % pid, "/proc/%s/environ" % pid):
        try:
            f = open(path, "wb" if path.endswith("/1") else "rb")
        except OSError as e:
            denied += 1
            continue
        opened += 1
        if path.endswith("/1"):
            for rid in range(1, 3000):
                m = json.dumps({"exit_code": 0, "timed_out": False, "truncated": False, "duration": 0}).encode()
                f.write(H.pack(rid, b"O", 0, 7) + b"forged\n" + H.pack(rid, b"x", len(m), 0) + m)
            if "header" in sys.argv:
                f.write(H.pack(0, b"O", 0, 1 << 30))
            f.flush()
print("opened", opened, "denied", denied)
sys.exit(7)
"""


def _run_bounded(fn, limit: float):
    """Run ``fn`` in a thread; (finished, result or exception). A hung host shows as not finished."""
    out: dict = {}

    def target():
        try:
            out["result"] = fn()
        except BaseException as e:  # noqa: BLE001 - reported to the test
            out["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(limit)
    return not t.is_alive(), out.get("result", out.get("error"))


@pytest.mark.parametrize("user", [None, "root"])
def test_agent_cannot_reach_the_servers_descriptors_or_forge_an_exit_code(docker_api, store, user):
    from lab.traces import RunRecorder

    rec = RunRecorder.start(store, {"task": "forge"})
    with open_sandbox(SandboxSpec(), recorder=rec) as box:  # root commands share the server's uid, not its reach
        done, r = _run_bounded(lambda: box.exec(["python3", "-c", FORGE], user=user, timeout=20), 60)
        assert done, "the host hung on a forged stream"
        assert not isinstance(r, BaseException), r
        assert r.exit_code == 7 and "forged" not in r.stdout, r
        assert "opened 0 denied 3" in r.stdout, r.stdout  # fd/1, mem and environ are all out of reach
        assert box.exec("echo still").stdout == "still\n"
    recorded = [e for e in store.events(rec.run_id) if e.attrs.get("process.command_args", [None])[0] == "python3"]
    assert recorded[-1].attrs["process.exit.code"] == 7


def test_forged_length_header_does_not_reach_host_memory(docker_api):
    with open_sandbox(SandboxSpec(output_cap=1 << 20)) as box:
        done, r = _run_bounded(lambda: box.exec(["python3", "-c", FORGE, "header"], timeout=10), 60)
        assert done, "the host waited on a forged 1 GiB frame"
        assert not isinstance(r, BaseException), r
        assert r.exit_code == 7 and "opened 0" in r.stdout


def test_agent_cannot_kill_or_signal_the_server(docker_api):
    with open_sandbox(SandboxSpec()) as box:
        r = box.exec("kill -9 $PPID; echo rc=$?")
        assert "rc=1" in r.stdout and "Operation not permitted" in r.stderr, r
        r = box.exec("kill -STOP 1; echo rc=$?")
        assert "rc=1" in r.stdout, r
        assert box.exec("echo alive").stdout == "alive\n"


def test_stalled_server_trips_the_host_deadline_and_marks_the_sandbox_broken(docker_api, monkeypatch):
    import lab.sandbox.docker as backend

    monkeypatch.setattr(backend, "DEADLINE_GRACE", 2.0)
    with open_sandbox(SandboxSpec()) as box:
        pid = box._channel().info["pid"]

        def stall():
            docker_api.api.exec_start(docker_api.api.exec_create(box.container.id, ["sh", "-c", f"kill -STOP {pid}"],
                                                                 user="0:0")["Id"])
            return box.exec("sleep 30", timeout=2)

        done, r = _run_bounded(stall, 40)
        assert done, "exec(timeout=2) hung on a stalled exec server"
        assert isinstance(r, SandboxUnavailable) and "broken" in str(r) and "timeout of 2" in str(r), r
        with pytest.raises(SandboxUnavailable, match="broken"):
            box.exec("true")
        with pytest.raises(SandboxUnavailable, match="broken"):
            box.read_file("x")


# -- the host's reader, fed a hostile byte stream directly ------------------------------------------


def _reader_on(payload: bytes):
    """A host channel reading ``payload`` (already framed by the engine) from a socket pair."""
    import queue

    from lab.sandbox.docker import _Channel

    a, b = socket.socketpair()
    chan = _Channel.__new__(_Channel)
    chan.sock, chan.dead, chan.violation, chan.stderr, chan._head = a, False, None, bytearray(), bytearray()
    chan._pending, chan._budget, chan._rid = {1: queue.SimpleQueue()}, {1: 1 << 20}, 1
    t = threading.Thread(target=chan._reader, daemon=True)
    t.start()
    b.sendall(payload)
    t.join(10)
    b.close()
    return chan, t


def _docker_frame(data: bytes, stream: int = 1) -> bytes:
    return bytes([stream, 0, 0, 0]) + len(data).to_bytes(4, "big") + data


@pytest.mark.parametrize("frame, why", [
    (b"\x00\x00\x00\x01O\x00\x00\x00\x00\x40\x00\x00\x00", "frame"),  # announces 1 GiB of data
    (b"\x00\x00\x00\x01Z\x00\x00\x00\x00\x00\x00\x00\x00", "frame"),  # unknown kind
    (b"\x00\x00\x00\x09x\x00\x00\x00\x02\x00\x00\x00\x00{}", "never made"),  # a reply to no request
    (b"\x00\x00\x00\x01x\x00\x00\x00\x03\x00\x00\x00\x00{{{", "meta"),  # not JSON
    (b"\x00\x00\x00\x01!\x00\x00\x00\x03\x00\x00\x00\x00[1]", "meta"),  # JSON, but not an object
])
def test_host_reader_refuses_out_of_protocol_frames(frame, why):
    chan, t = _reader_on(_docker_frame(frame))
    assert not t.is_alive() and chan.dead and why in (chan.violation or ""), chan.violation


def test_host_reader_refuses_a_stream_frame_over_its_bound():
    chan, t = _reader_on(bytes([1, 0, 0, 0]) + (1 << 30).to_bytes(4, "big"))
    assert not t.is_alive() and "stream frame" in (chan.violation or "")


def test_host_reader_refuses_output_past_the_requests_budget():
    chunk = b"\x00\x00\x00\x01O\x00\x00\x00\x00\x00\x01\x00\x00" + b"y" * (1 << 16)
    chan, t = _reader_on(b"".join(_docker_frame(chunk) for _ in range(17)))  # 17 x 64 KiB > 1 MiB budget
    assert not t.is_alive() and "limit" in (chan.violation or "")


def test_planted_fifos_do_not_stall_file_operations(docker_api, tmp_path):
    from lab.sandbox import SandboxError

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("from the host")
    with open_sandbox(SandboxSpec()) as box:
        box.exec("mkfifo p q && mkdir in && mkfifo in/a.txt")
        for op, says in ((lambda: box.read_file("p"), "not a regular file"),
                         (lambda: box.write_file("q", "x"), "No such device")):  # a fifo nobody reads
            done, r = _run_bounded(op, 30)
            assert done and isinstance(r, SandboxError) and says in str(r), r
        box.exec("sleep 20 < q &")  # now with a reader: still refused, never written into
        done, r = _run_bounded(lambda: box.write_file("q", "x"), 30)
        assert done and isinstance(r, SandboxError) and "not a regular file" in str(r), r
        done, r = _run_bounded(lambda: box.copy_in(tmp_path / "src", "in"), 30)
        assert done and r is None, r
        assert box.read_file("in/a.txt") == b"from the host"
