"""The sandbox conformance suite: what every sandbox backend (Docker, local with and without bubblewrap, a
third-party one registered in :data:`~lab.sandbox.factory.SANDBOX_BACKENDS`) must do alike.

Each ``check_*`` function takes a :class:`SandboxCase` (the backend's :class:`SandboxSpec`, opened through
:func:`open_sandbox`) and raises ``AssertionError`` when the backend breaks a promise. A backend's test
module runs every function of :data:`CHECKS`::

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    def test_sandbox(check):
        check(SandboxCase(SandboxSpec(backend="mine")))
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from lab.sandbox.base import ExecResult, Sandbox, SandboxError
from lab.sandbox.factory import open_sandbox
from lab.sandbox.spec import SandboxSpec
from lab.traces.recorder import RunRecorder
from lab.traces.schema import (
    COMMAND_ARGS,
    ERROR_TYPE,
    EXIT_CODE,
    FILE_SIZE,
    SANDBOX_BACKEND,
    SANDBOX_ENV_KEYS,
    SANDBOX_ID,
    SANDBOX_OP,
    STDERR,
    STDOUT,
    STDOUT_TRUNCATED,
    TIMED_OUT,
    EventKind,
)
from lab.traces.store import TraceStore


@dataclass
class SandboxCase:
    """One backend as the suite reaches it.

    Attributes:
        spec: Opens the backend (``open_sandbox(spec)``); checks that need other limits copy it with overrides.
        shared: A sandbox of ``spec`` that checks leaving it as they found it may share (default: each such
            check opens and closes its own).
        switch_user: Whether ``exec(user=...)`` may run as another user (an unisolated local sandbox cannot).
    """

    spec: SandboxSpec
    shared: Sandbox | None = None
    switch_user: bool = True
    _opened: list[Sandbox] = field(default_factory=list, repr=False)

    @contextlib.contextmanager
    def box(self) -> Iterator[Sandbox]:
        """The shared sandbox, or a new one closed afterwards."""
        if self.shared is not None:
            yield self.shared
            return
        with open_sandbox(self.spec) as sb:
            yield sb

    def fresh(self, **overrides: object) -> Sandbox:
        """A new sandbox of ``spec`` with field overrides (closed by :meth:`close`)."""
        sb = open_sandbox(self.spec.model_copy(update=overrides))
        self._opened.append(sb)
        return sb

    def close(self) -> None:
        """Close the sandboxes :meth:`fresh` opened."""
        while self._opened:
            self._opened.pop().close()


def _closing(check: Callable[[SandboxCase], None]) -> Callable[[SandboxCase], None]:
    """Close the sandboxes a check opened with :meth:`SandboxCase.fresh`, however it ends."""

    @functools.wraps(check)
    def run(case: SandboxCase) -> None:
        try:
            check(case)
        finally:
            case.close()

    return run


def _raises(exc: type[BaseException], match: str | None = None) -> contextlib.AbstractContextManager[None]:
    """Like ``pytest.raises``: the block must raise ``exc`` (with ``match`` in its message)."""

    @contextlib.contextmanager
    def expect() -> Iterator[None]:
        try:
            yield
        except exc as e:
            assert match is None or re.search(match, str(e)), f"{e!r} does not match {match!r}"
            return
        raise AssertionError(f"expected {exc.__name__}")

    return expect()


@_closing
def check_implements_the_protocol(case: SandboxCase) -> None:
    with case.box() as sb:
        assert isinstance(sb, Sandbox)
        assert sb.exec("pwd").stdout.strip() == sb.workdir


@_closing
def check_exit_codes(case: SandboxCase) -> None:
    with case.box() as sb:
        assert sb.exec("true").exit_code == 0
        assert sb.exec("exit 3").exit_code == 3
        assert sb.exec(["sh", "-c", "exit 42"]).exit_code == 42
        r = sb.exec(["definitely-not-a-command-xyz"])
        assert r.exit_code == 127 and not r.ok
        assert sb.exec("kill -TERM $$").exit_code == 128 + 15


@_closing
def check_bad_commands_are_refused(case: SandboxCase) -> None:
    with case.box() as sb:
        with _raises(SandboxError):
            sb.exec("   ")
        with _raises(SandboxError):
            sb.exec([])
        with _raises(SandboxError):
            sb.exec("true", timeout=0)


@_closing
def check_stdin_bytes_and_text(case: SandboxCase) -> None:
    with case.box() as sb:
        assert sb.exec("cat", input=b"\x00\x01binary\xff").stdout_bytes == b"\x00\x01binary\xff"
        assert sb.exec("wc -l", input="a\nb\nc\n").stdout.strip() == "3"
        big = os.urandom(3 << 20)
        assert sb.exec("sha256sum | cut -c1-64", input=big).stdout.strip() == hashlib.sha256(big).hexdigest()
        assert sb.exec("cat").stdout == ""  # no input: stdin is empty, not a hang


@_closing
def check_cwd(case: SandboxCase) -> None:
    with case.box() as sb:
        sb.exec("mkdir -p sub/dir")
        assert sb.exec("pwd", cwd="sub/dir").stdout.strip() == f"{sb.workdir}/sub/dir"
        assert sb.exec("pwd", cwd=f"{sb.workdir}/sub").stdout.strip() == f"{sb.workdir}/sub"
        with _raises(FileNotFoundError):
            sb.exec("pwd", cwd="no/such/dir")


@_closing
def check_env(case: SandboxCase) -> None:
    with case.box() as sb:
        r = sb.exec('printf "%s|%s" "$GREETING" "$OTHER"', env={"GREETING": "hello world", "OTHER": "x=y"})
        assert r.stdout == "hello world|x=y"
        assert sb.exec('printf "%s" "$GREETING"').stdout == ""  # not sticky


@_closing
def check_spec_env_reaches_every_command(case: SandboxCase) -> None:
    box = case.fresh(env={"LAB_TASK": "t1"})
    assert box.exec('printf "%s" "$LAB_TASK"').stdout == "t1"
    assert box.exec('printf "%s" "$LAB_TASK"', env={"LAB_TASK": "t2"}).stdout == "t2"


@_closing
def check_user(case: SandboxCase) -> None:
    with case.box() as sb:
        me = sb.exec("id -un").stdout.strip()
        assert sb.exec("id -un", user=me).stdout.strip() == me
        if not case.switch_user:
            with _raises(SandboxError):
                sb.exec("id -un", user="root" if me != "root" else "nobody")
        else:
            assert sb.exec("id -u", user="root").stdout.strip() == "0"
            assert sb.exec("id -un").stdout.strip() == me  # back to the sandbox's user
            with _raises(SandboxError):
                sb.exec("true", user="no-such-user-xyz")


@_closing
def check_stdout_stderr_are_separate(case: SandboxCase) -> None:
    with case.box() as sb:
        r = sb.exec("echo out; echo err >&2; echo out2")
        assert r.stdout == "out\nout2\n" and r.stderr == "err\n"


@_closing
def check_non_utf8_bytes(case: SandboxCase) -> None:
    with case.box() as sb:
        r = sb.exec(r"printf 'ok\377\376\200end'")
        assert r.stdout_bytes == b"ok\xff\xfe\x80end"
        assert r.stdout.startswith("ok") and r.stdout.endswith("end") and "\ufffd" in r.stdout


@_closing
def check_large_output_is_kept_whole_under_the_cap(case: SandboxCase) -> None:
    with case.box() as sb:
        r = sb.exec("head -c 3145728 /dev/zero | tr '\\0' a; head -c 1048576 /dev/zero | tr '\\0' b >&2")
        assert len(r.stdout_bytes) == 3 << 20 and set(r.stdout_bytes) == {ord("a")}
        assert len(r.stderr_bytes) == 1 << 20 and not r.truncated


@_closing
def check_output_cap_truncates_and_says_so(case: SandboxCase) -> None:
    box = case.fresh(output_cap=100_000)
    r = box.exec("head -c 1000000 /dev/zero; echo done >&2")
    assert r.truncated and len(r.stdout_bytes) == 100_000 and r.stderr == "done\n" and r.exit_code == 0


@_closing
def check_timeout_kills_the_process_group_keeps_output_and_sandbox_stays_usable(case: SandboxCase) -> None:
    with case.box() as sb:
        sb.exec("rm -f marker")
        started = time.monotonic()
        r = sb.exec("echo before; (sleep 2; touch marker) & sleep 30", timeout=1)
        took = time.monotonic() - started
        assert r.timed_out and r.exit_code == -1 and not r.ok
        assert r.stdout == "before\n"
        assert 1 <= r.duration and took < 1 + 1.0, f"killed {took - 1:.2f}s after the limit"
        time.sleep(1.5)
        assert sb.exec("test -e marker").exit_code == 1, "a background child of the timed-out command survived"
        assert sb.exec("echo again").stdout == "again\n"


@_closing
def check_command_finishing_in_time_is_not_timed_out(case: SandboxCase) -> None:
    with case.box() as sb:
        r = sb.exec("sleep 0.2; echo ok", timeout=10)
        assert r.ok and not r.timed_out and r.stdout == "ok\n"


@_closing
def check_exec_stream(case: SandboxCase) -> None:
    with case.box() as sb:
        chunks = list(sb.exec_stream("echo one; sleep 0.2; echo two >&2; exit 4"))
        assert chunks[-1] == ("exit", b"4")
        assert b"".join(c for s, c in chunks if s == "stdout") == b"one\n"
        assert b"".join(c for s, c in chunks if s == "stderr") == b"two\n"
        timed = list(sb.exec_stream("echo x; sleep 30", timeout=0.5))
        assert timed[-1] == ("exit", b"-1")


@_closing
def check_exec_stream_closed_early_kills_the_command(case: SandboxCase) -> None:
    with case.box() as sb:
        sb.exec("rm -f streamed")
        gen = sb.exec_stream("echo first; sleep 2; touch streamed")
        assert next(gen) == ("stdout", b"first\n")
        gen.close()
        time.sleep(2.5)
        assert sb.exec("test -e streamed").exit_code == 1


@_closing
def check_read_write_text_and_binary(case: SandboxCase) -> None:
    with case.box() as sb:
        sb.write_file("notes/hello.txt", "héllo\nwörld\n")
        assert sb.read_file("notes/hello.txt") == "héllo\nwörld\n".encode()
        blob = bytes(range(256)) * 4096 + os.urandom(4096)
        sb.write_file(f"{sb.workdir}/notes/blob.bin", blob)
        assert sb.read_file("notes/blob.bin") == blob
        assert sb.exec("wc -c < notes/blob.bin").stdout.strip() == str(len(blob))
        sb.write_file("notes/hello.txt", b"")
        assert sb.read_file("notes/hello.txt") == b""
        sb.write_file("/tmp/in-tmp.txt", "tmp")
        assert sb.exec("cat /tmp/in-tmp.txt").stdout == "tmp"


@_closing
def check_missing_files(case: SandboxCase) -> None:
    with case.box() as sb:
        with _raises(FileNotFoundError):
            sb.read_file("does/not/exist.txt")
        with _raises(FileNotFoundError):
            sb.copy_out("does-not-exist", "/tmp")
        sb.exec("mkdir -p adir")
        with _raises(IsADirectoryError):
            sb.read_file("adir")


@_closing
def check_permission_errors(case: SandboxCase) -> None:
    with case.box() as sb:
        with _raises(PermissionError):
            sb.write_file("/etc/lab-should-not-exist", "x")
        with _raises(PermissionError):
            sb.write_file("/usr/lab-should-not-exist/f.txt", "x")


@_closing
def check_read_file_refuses_files_over_the_cap(case: SandboxCase) -> None:
    box = case.fresh(read_file_cap=1000)
    box.write_file("big.bin", b"x" * 1001)
    box.write_file("ok.bin", b"x" * 1000)
    with _raises(SandboxError, "1001"):
        box.read_file("big.bin")
    assert box.read_file("ok.bin") == b"x" * 1000


@_closing
def check_copy_directories_in_and_out(case: SandboxCase) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        with case.box() as sb:
            src = tmp_path / "src"
            (src / "pkg" / "deep").mkdir(parents=True)
            (src / "README.md").write_text("readme\n")
            (src / "pkg" / "deep" / "data.bin").write_bytes(bytes(range(256)) * 10)
            (src / "pkg" / "run.sh").write_text("#!/bin/sh\necho ran\n")
            (src / "pkg" / "run.sh").chmod(0o755)
            sb.copy_in(src, "proj")
            assert sb.exec("./pkg/run.sh", cwd="proj").stdout == "ran\n"
            assert sb.exec("cat proj/README.md").stdout == "readme\n"
            sb.exec("echo made-inside > proj/pkg/new.txt")
            out = tmp_path / "out"
            sb.copy_out("proj", out)
            assert (out / "proj" / "pkg" / "deep" / "data.bin").read_bytes() == bytes(range(256)) * 10
            assert (out / "proj" / "pkg" / "new.txt").read_text() == "made-inside\n"
            assert os.access(out / "proj" / "pkg" / "run.sh", os.X_OK)
            sb.copy_out("proj/README.md", out / "single")
            assert (out / "single" / "README.md").read_text() == "readme\n"
            with _raises(FileNotFoundError):
                sb.copy_in(tmp_path / "missing", "x")


@_closing
def check_snapshot_and_restore(case: SandboxCase) -> None:
    box = case.fresh()
    box.write_file("keep.txt", "v1")
    box.exec("mkdir -p d && echo nested > d/n.txt")
    ref = box.snapshot()
    box.write_file("keep.txt", "v2")
    box.write_file("added.txt", "new")
    box.exec("rm -r d")
    box.restore(ref)
    assert box.read_file("keep.txt") == b"v1"
    assert box.read_file("d/n.txt") == b"nested\n"
    assert box.exec("test -e added.txt").exit_code == 1
    box.write_file("after.txt", "works")  # still usable, and writable
    assert box.exec("cat after.txt keep.txt").stdout == "worksv1"
    box.restore(ref)  # a snapshot can be restored more than once
    assert box.exec("test -e after.txt").exit_code == 1


@_closing
def check_close_is_idempotent_and_final(case: SandboxCase) -> None:
    box = case.fresh()
    box.exec("true")
    box.close()
    box.close()
    assert box.closed
    with _raises(SandboxError, "closed"):
        box.exec("true")
    with open_sandbox(box.spec) as other:
        assert other.exec("true").ok
    assert other.closed


@_closing
def check_concurrent_execs_in_one_sandbox(case: SandboxCase) -> None:
    with case.box() as sb:
        def work(i: int) -> ExecResult:
            return sb.exec(f"sleep 0.5; echo {i}; echo e{i} >&2", timeout=30)

        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(work, range(8)))
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(8)]
        assert [r.stderr for r in results] == [f"e{i}\n" for i in range(8)]
        assert time.monotonic() - started < 8 * 0.5, "execs in one sandbox ran one after another"


@_closing
def check_sixteen_sandboxes_at_once(case: SandboxCase) -> None:
    errors: list[BaseException] = []
    outputs: dict[int, str] = {}
    lock = threading.Lock()

    def one(i: int) -> None:
        try:
            with open_sandbox(case.spec) as box:
                box.write_file("id.txt", str(i))
                r = box.exec("cat id.txt; echo; echo $$")
                with lock:
                    outputs[i] = r.stdout.split()[0]
        except BaseException as e:  # noqa: BLE001 - collected and reported below
            errors.append(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert outputs == {i: str(i) for i in range(16)}


@_closing
def check_every_operation_is_recorded(case: SandboxCase) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        store = TraceStore(tmp_path / "traces.db")
        rec = RunRecorder.start(store, {"task": "sandbox-conformance"})
        with open_sandbox(case.spec, recorder=rec) as box:
            box.exec("echo hi; echo oops >&2; exit 2", env={"SECRET_NAME": "v"})
            box.exec("head -c 100000 /dev/zero | tr '\\0' z")
            box.exec("sleep 5", timeout=0.3)
            box.write_file("f.txt", "abc")
            box.read_file("f.txt")
            with _raises(FileNotFoundError):
                box.read_file("missing.txt")
            (tmp_path / "d").mkdir()
            (tmp_path / "d" / "x").write_text("x")
            box.copy_in(tmp_path / "d", "d")
            box.copy_out("d", tmp_path / "out")
            list(box.exec_stream("echo streamed"))
        execs = store.events(rec.run_id, kinds=[EventKind.SANDBOX_EXEC.value])
        files = store.events(rec.run_id, kinds=[EventKind.SANDBOX_FILE.value])
        first = execs[0].attrs
        assert first[COMMAND_ARGS] == ["sh", "-c", "echo hi; echo oops >&2; exit 2"]
        assert first[EXIT_CODE] == 2 and first[STDOUT] == "hi\n"
        assert first[STDERR] == "oops\n" and first[SANDBOX_ENV_KEYS] == ["SECRET_NAME"]
        assert first[SANDBOX_BACKEND] == box.backend and first[SANDBOX_ID] == box.id
        big = execs[1].attrs
        assert big[STDOUT_TRUNCATED] and len(big[STDOUT]) == 64 * 1024
        assert execs[2].attrs[TIMED_OUT] and execs[2].attrs[EXIT_CODE] == -1
        assert execs[3].attrs[STDOUT] == "streamed\n" and execs[3].attrs[EXIT_CODE] == 0
        assert [f.attrs[SANDBOX_OP] for f in files] == ["write", "read", "read", "copy_in", "copy_out"]
        assert files[0].attrs[FILE_SIZE] == 3 and files[2].attrs[ERROR_TYPE] == "FileNotFoundError"


Check = Callable[[SandboxCase], None]
CHECKS: list[Check] = [
    check_implements_the_protocol,
    check_exit_codes,
    check_bad_commands_are_refused,
    check_stdin_bytes_and_text,
    check_cwd,
    check_env,
    check_spec_env_reaches_every_command,
    check_user,
    check_stdout_stderr_are_separate,
    check_non_utf8_bytes,
    check_large_output_is_kept_whole_under_the_cap,
    check_output_cap_truncates_and_says_so,
    check_timeout_kills_the_process_group_keeps_output_and_sandbox_stays_usable,
    check_command_finishing_in_time_is_not_timed_out,
    check_exec_stream,
    check_exec_stream_closed_early_kills_the_command,
    check_read_write_text_and_binary,
    check_missing_files,
    check_permission_errors,
    check_read_file_refuses_files_over_the_cap,
    check_copy_directories_in_and_out,
    check_snapshot_and_restore,
    check_close_is_idempotent_and_final,
    check_concurrent_execs_in_one_sandbox,
    check_sixteen_sandboxes_at_once,
    check_every_operation_is_recorded,
]
"""Every check, in order."""

__all__ = ["CHECKS", "Check", "SandboxCase"]
