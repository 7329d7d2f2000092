"""The `kernel` tool against a real IPython kernel in a real Docker sandbox with no network."""

from __future__ import annotations

import base64
import socket
import struct
import zlib

import pytest

from lab.sandbox.kernel import kernel_for
from lab.tools import ToolContext, ToolError, kernel


def run(box, code: str, *, timeout: float | None = 60, state: dict | None = None, **kw) -> tuple[str, ToolContext]:
    ctx = ToolContext(sandbox=box, state={} if state is None else state, timeout=timeout)
    return kernel({"code": code, **kw}, ctx), ctx


def test_state_persists_across_calls(kbox):
    out, _ = run(kbox, "x = 40\nimport os\nos.chdir('/tmp')\nprint('set')")
    assert out.strip() == "set"
    out, ctx = run(kbox, "x + 2")
    assert out.strip() == "42"
    assert ctx.attrs["lab.kernel.outputs"]["result"] == "42"
    assert ctx.attrs["lab.kernel.outputs"]["status"] == "ok"
    out, _ = run(kbox, "import os; os.getcwd()")
    assert out.strip() == "'/tmp'"


def test_stdout_stderr_and_errors_with_traceback(kbox):
    out, ctx = run(kbox, "import sys\nprint('to out')\nprint('to err', file=sys.stderr)\n1/0")
    rec = ctx.attrs["lab.kernel.outputs"]
    assert rec["stdout"] == "to out\n" and rec["stderr"] == "to err\n"
    assert rec["status"] == "error" and "ZeroDivisionError" in rec["error"] and "\x1b[" not in rec["error"]
    assert "to out" in out and "ZeroDivisionError" in out


def test_shell_escape_runs_in_the_sandbox(kbox):
    out, _ = run(kbox, "!id -un && hostname")
    assert out.split() == ["agent", "sandbox"]


def test_images_are_saved_in_the_sandbox_and_recorded_by_path(kbox):
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\x00\x7f")) + chunk(b"IEND", b""))
    data = base64.b64encode(png).decode()
    code = f"from IPython.display import Image, display\nimport base64\ndisplay(Image(data=base64.b64decode({data!r})))"
    out, ctx = run(kbox, code)
    (shown,) = ctx.attrs["lab.kernel.outputs"]["displays"]
    assert shown["mime"] == "image/png" and shown["path"].startswith("/work/.kernel_outputs/")
    assert shown["path"] in out and "base64" not in out.split("saved to")[0]
    assert kbox.read_file(shown["path"]) == png


def test_runaway_cell_is_interrupted_and_the_kernel_survives(kbox):
    run(kbox, "kept = 'still here'")
    out, ctx = run(kbox, "import time\nwhile True:\n    time.sleep(0.05)", timeout=2)
    assert ctx.attrs["lab.kernel.outputs"]["status"] == "timeout"
    assert "interrupted at the timeout" in out and "KeyboardInterrupt" in out
    out, _ = run(kbox, "kept")
    assert out.strip() == "'still here'"
    busy, ctx = run(kbox, "n = 0\nwhile True:\n    n += 1", timeout=2)  # a pure-Python loop, no sleeping
    assert ctx.attrs["lab.kernel.outputs"]["status"] == "timeout"
    out, _ = run(kbox, "n > 0, kept")
    assert out.strip() == "(True, 'still here')"


def test_crash_is_reported_and_restart_works(fresh_box):
    box = fresh_box()
    run(box, "x = 1")
    out, ctx = run(box, "import os; os._exit(1)")
    assert ctx.attrs["lab.kernel.outputs"]["status"] == "died"
    assert "kernel died while running the cell (exit code 1)" in out
    out, _ = run(box, "'x' in dir()")
    assert "a fresh kernel started" in out and out.strip().endswith("False")
    run(box, "y = 2")
    out, _ = run(box, "", restart=True)
    assert "kernel restarted" in out
    out, _ = run(box, "'y' in dir(), 1 + 1")
    assert out.strip() == "(False, 2)"


def test_empty_call_is_a_clear_error(kbox):
    with pytest.raises(ToolError, match="give `code`"):
        run(kbox, "  ")


def test_restore_restarts_the_kernel_and_says_so(fresh_box):
    box = fresh_box()
    run(box, "open('kept.txt', 'w').write('file'); v = 'var'")
    ref = box.snapshot()
    box.restore(ref)
    out, _ = run(box, "open('kept.txt').read(), 'v' in dir()")
    assert "restored from a snapshot" in out and out.strip().endswith("('file', False)")


def test_a_resumed_run_is_told_its_kernel_state_is_gone(fresh_box):
    box = fresh_box()
    out, _ = run(box, "1", state={"kernel_cells": 3})
    assert "kernel state is not" in out


def test_kernel_cannot_reach_host_network_or_host_sockets(fresh_box):
    """The sandbox has only a loopback; the host's listening sockets (TCP on every address, and the kernel's
    own forwarding sockets) are out of reach from a cell."""
    box = fresh_box()
    host = socket.socket()
    host.bind(("0.0.0.0", 0))
    host.listen()
    port = host.getsockname()[1]
    addrs = sorted({a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)} | {"172.17.0.1"})
    try:
        out, _ = run(box, "import socket, os\nprint(sorted(os.listdir('/sys/class/net')))")
        assert out.strip() == "['lo']"
        fwd = kernel_for(box)._forward.dir
        code = (f"import socket, os\nok = []\nfor a in {addrs!r}:\n    s = socket.socket(); s.settimeout(2)\n"
                f"    try:\n        s.connect((a, {port})); ok.append(a)\n    except OSError:\n        pass\n"
                f"print('reached', ok, os.path.exists({fwd!r}))")
        out, _ = run(box, code)
        assert out.strip() == "reached [] False"
        host.settimeout(0.5)
        with pytest.raises(OSError):
            host.accept()
    finally:
        host.close()


def test_local_sandbox_is_refused_clearly(tmp_path):
    from lab.sandbox import SandboxSpec, open_sandbox

    with open_sandbox(SandboxSpec(backend="local", bwrap=False)) as box:
        with pytest.raises(ToolError, match="kernel runs in Docker sandboxes"):
            run(box, "1")


def test_output_flood_is_capped_on_the_host(kbox):
    from lab.sandbox.kernel import TEXT_CAP

    out, ctx = run(kbox, "for _ in range(40):\n    print('x' * 100_000)")
    rec = ctx.attrs["lab.kernel.outputs"]
    assert TEXT_CAP <= len(rec["stdout"]) < TEXT_CAP + 200 and "characters cut" in rec["stdout"]
    assert any("more characters of output were not kept" in n for n in rec["notes"])
    assert run(kbox, "1 + 1")[0].strip() == "2"


def test_image_without_ipykernel_is_a_clear_error(kernel_image):
    from lab.sandbox import SandboxSpec, open_sandbox
    from lab.sandbox.images import ensure_image

    with open_sandbox(SandboxSpec(image=ensure_image("base", log=lambda _line: None))) as box:
        with pytest.raises(ToolError, match=r"has no ipykernel in /opt/lab-kernel .*lab sandbox build repo-setup"):
            run(box, "1")
