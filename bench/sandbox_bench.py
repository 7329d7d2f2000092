"""Sandbox speed: our resident exec server against raw SDK ``exec_run`` and the ``docker`` CLI, in one run.

All three drive the same image with the same hardened container settings (network none, cap-drop ALL,
no-new-privileges, read-only root, init, limits, a workdir volume); ours adds what the baselines lack: its
exec server switching every command to the agent user, and a size-limited workdir filesystem. Prints a table
of median and p95 per operation and the ratios baseline / ours.

    .venv/bin/python bench/sandbox_bench.py            # full run (a few minutes)
    .venv/bin/python bench/sandbox_bench.py --quick    # fewer repetitions
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.sandbox import SandboxSpec, open_sandbox  # noqa: E402
from lab.sandbox.docker import docker_client  # noqa: E402
from lab.sandbox.gc import owner_labels  # noqa: E402
from lab.sandbox.images import ensure_image  # noqa: E402

MiB = 1 << 20
IMAGE = "expertlab/base:latest"
HARDENED_CLI = ["--network", "none", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--read-only",
                "--tmpfs", "/tmp:rw,nosuid,nodev,size=512m,mode=1777", "--init", "--memory", "1g",
                "--memory-swap", "1g", "--cpus", "1", "--pids-limit", "256", "--user", "1000:1000",
                "--mount", "type=volume,dst=/work", "-w", "/work"]


def stats(samples: list[float]) -> tuple[float, float]:
    """(median, p95) in milliseconds."""
    s = sorted(samples)
    return statistics.median(s) * 1000, s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))] * 1000


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


# -- baselines ---------------------------------------------------------------------------------------


class SdkBox:
    """A container with the same settings, driven by one SDK ``exec_run`` per command."""

    def __init__(self, client) -> None:
        from docker.types import Mount

        labels = owner_labels(uuid.uuid4().hex[:12], "bench")
        self.c = client.containers.run(
            IMAGE, ["sleep", "infinity"], detach=True, labels=labels, user="1000:1000", working_dir="/work",
            init=True, cap_drop=["ALL"], security_opt=["no-new-privileges"], read_only=True,
            tmpfs={"/tmp": "rw,nosuid,nodev,size=512m,mode=1777"}, mounts=[Mount("/work", None, labels=labels)],
            mem_limit="1g", memswap_limit="1g", nano_cpus=1_000_000_000, pids_limit=256, network_mode="none")
        self.images: list[str] = []

    def exec(self, cmd: str) -> bytes:
        code, out = self.c.exec_run(["sh", "-c", cmd])
        assert code == 0, out
        return out

    def write_read(self, data: bytes) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("f.bin")
            info.size, info.uid, info.gid = len(data), 1000, 1000
            tar.addfile(info, io.BytesIO(data))
        self.c.put_archive("/work", buf.getvalue())
        bits, _ = self.c.get_archive("/work/f.bin")
        with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as tar:
            return tar.extractfile("f.bin").read()

    def snapshot_restore(self, client) -> None:
        """Commit, then start a fresh container from the image (the workdir volume is not part of a commit)."""
        image = self.c.commit()
        self.images.append(image.id)
        old, self.c = self.c, client.containers.run(image.id, ["sleep", "infinity"], detach=True,
                                                    labels=self.c.labels, user="1000:1000", network_mode="none",
                                                    init=True, cap_drop=["ALL"], read_only=True)
        self.c.exec_run("true")
        old.remove(force=True, v=True)

    def close(self) -> None:
        self.c.remove(force=True, v=True)
        import docker.errors

        for image in reversed(self.images):  # newest first: each commit is a child of the one before
            try:
                self.c.client.images.remove(image, force=True)
            except docker.errors.NotFound:
                pass  # pruned with its child


def docker_cli(*args: str, input: bytes | None = None) -> bytes:
    r = subprocess.run(["docker", *args], input=input, capture_output=True)
    if r.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args[:3])}: {r.stderr.decode()[-300:]}")
    return r.stdout


class CliBox:
    """The same container, driven by one ``docker exec`` / ``docker cp`` process per operation."""

    def __init__(self) -> None:
        labels = [x for k, v in owner_labels(uuid.uuid4().hex[:12], "bench").items() for x in ("--label", f"{k}={v}")]
        self.id = docker_cli("run", "-d", *labels, *HARDENED_CLI, IMAGE, "sleep", "infinity").decode().strip()
        self.images: list[str] = []

    def exec(self, cmd: str) -> bytes:
        return docker_cli("exec", self.id, "sh", "-c", cmd)

    def write_read(self, data: bytes, tmp: Path) -> bytes:
        (tmp / "f.bin").write_bytes(data)
        docker_cli("cp", str(tmp / "f.bin"), f"{self.id}:/work/f.bin")
        docker_cli("cp", f"{self.id}:/work/f.bin", str(tmp / "back.bin"))
        return (tmp / "back.bin").read_bytes()

    def snapshot_restore(self) -> None:
        image = docker_cli("commit", self.id).decode().strip()
        self.images.append(image)
        old = self.id
        self.id = docker_cli("run", "-d", *HARDENED_CLI, image, "sleep", "infinity").decode().strip()
        docker_cli("exec", self.id, "true")
        docker_cli("rm", "-f", "-v", old)

    def close(self) -> None:
        docker_cli("rm", "-f", "-v", self.id)
        for image in reversed(self.images):  # parents may already be pruned with their child
            subprocess.run(["docker", "rmi", image], capture_output=True)


# -- the benchmark -----------------------------------------------------------------------------------


def concurrent(make_and_run: Callable[[int], None], n: int = 16) -> tuple[float, int]:
    """Wall time for ``n`` sandboxes at once, and how many failed."""
    failures = []

    def one(i: int) -> None:
        try:
            make_and_run(i)
        except Exception as e:  # noqa: BLE001 - counted
            failures.append(e)

    t = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for e in failures[:3]:
        print(f"  failure: {type(e).__name__}: {e}", file=sys.stderr)
    return time.perf_counter() - t, len(failures)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = ap.parse_args()
    q = 3 if args.quick else 1
    client = docker_client()
    ensure_image("base", log=lambda _l: None)
    data = bytes(range(256)) * (MiB // 256)
    big = "head -c 1048576 /dev/zero"
    rows: list[tuple[str, list[float] | None, list[float] | None, list[float] | None]] = []
    tmp = Path(tempfile.mkdtemp(prefix="sandbox-bench-"))
    spec = SandboxSpec(image=IMAGE)

    def start_samples(make, first, close, n):
        """Seconds from creating a sandbox to its first command's result (closing is not timed)."""
        out = []
        for _ in range(n):
            t = time.perf_counter()
            box = make()
            first(box)
            out.append(time.perf_counter() - t)
            close(box)
        return out

    print("start to first command ...", file=sys.stderr)
    n_start = max(3, 15 // q)
    rows.append(("start to first command",
                 start_samples(lambda: open_sandbox(spec), lambda b: b.exec("true"), lambda b: b.close(), n_start),
                 start_samples(lambda: SdkBox(client), lambda b: b.exec("true"), lambda b: b.close(), n_start),
                 start_samples(CliBox, lambda b: b.exec("true"), lambda b: b.close(), n_start)))

    ours, sdk, cli = open_sandbox(spec), SdkBox(client), CliBox()
    try:
        print("exec round-trip ...", file=sys.stderr)
        ours.exec("true")
        rows.append(("exec `true`", timed(lambda: ours.exec("true"), 300 // q),
                     timed(lambda: sdk.exec("true"), 60 // q), timed(lambda: cli.exec("true"), 40 // q)))
        print("1 MiB output ...", file=sys.stderr)
        assert len(ours.exec(big).stdout_bytes) == MiB and len(sdk.exec(big)) == MiB and len(cli.exec(big)) == MiB
        rows.append(("command printing 1 MiB", timed(lambda: ours.exec(big), 60 // q),
                     timed(lambda: sdk.exec(big), 30 // q), timed(lambda: cli.exec(big), 20 // q)))
        print("1 MiB file write+read ...", file=sys.stderr)

        def ours_wr() -> bytes:
            ours.write_file("f.bin", data)
            return ours.read_file("f.bin")

        assert ours_wr() == data and sdk.write_read(data) == data and cli.write_read(data, tmp) == data
        rows.append(("write+read 1 MiB file", timed(ours_wr, 60 // q), timed(lambda: sdk.write_read(data), 30 // q),
                     timed(lambda: cli.write_read(data, tmp), 20 // q)))
        print("snapshot+restore ...", file=sys.stderr)
        ours.write_file("f.bin", data)

        def ours_sr() -> None:
            ours.restore(ours.snapshot())

        rows.append(("snapshot+restore", timed(ours_sr, max(2, 8 // q)),
                     timed(lambda: sdk.snapshot_restore(client), max(2, 8 // q)),
                     timed(cli.snapshot_restore, max(2, 8 // q))))
        assert ours.read_file("f.bin") == data
    finally:
        ours.close()
        sdk.close()
        cli.close()

    print("16 concurrent sandboxes x 20 commands ...", file=sys.stderr)

    def ours_conc(i: int) -> None:
        with open_sandbox(spec) as box:
            for k in range(20):
                assert box.exec(f"echo {i}-{k}").stdout == f"{i}-{k}\n"

    def sdk_conc(i: int) -> None:
        b = SdkBox(client)
        try:
            for k in range(20):
                assert b.exec(f"echo {i}-{k}") == f"{i}-{k}\n".encode()
        finally:
            b.close()

    def cli_conc(i: int) -> None:
        b = CliBox()
        try:
            for k in range(20):
                assert b.exec(f"echo {i}-{k}") == f"{i}-{k}\n".encode()
        finally:
            b.close()

    conc = [concurrent(ours_conc), concurrent(sdk_conc), concurrent(cli_conc)]
    shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nimage {IMAGE}; hardened containers; ms (median / p95); ratio = baseline median / ours median\n")
    print("| operation | ours (resident server) | SDK exec_run | ratio | docker CLI | ratio |")
    print("|---|---|---|---|---|---|")
    for name, o, s, c in rows:
        om, op = stats(o)
        sm, sp = stats(s)
        cm, cp = stats(c)
        print(f"| {name} | {om:.2f} / {op:.2f} | {sm:.2f} / {sp:.2f} | {sm / om:.1f}x | {cm:.2f} / {cp:.2f} | "
              f"{cm / om:.1f}x |")
    (ow, of), (sw, sf), (cw, cf) = conc
    print(f"| 16 sandboxes x 20 commands, wall s (failures) | {ow:.2f} ({of}) | {sw:.2f} ({sf}) | {sw / ow:.1f}x | "
          f"{cw:.2f} ({cf}) | {cw / ow:.1f}x |")


if __name__ == "__main__":
    main()
