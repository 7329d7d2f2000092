"""`lab sandbox gc` removes only the local sandbox directories the lab created and marked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# A process that opens a local sandbox and dies without closing it (what gc is for).
_LEAK = """
import os, warnings
warnings.simplefilter("ignore")
from lab.sandbox import SandboxSpec, open_sandbox
sb = open_sandbox(SandboxSpec(backend="local"))
sb.write_file("left.txt", "behind")
print(sb.root, flush=True)
os._exit(0)
"""


def _lab(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lab.cli.main", *args], cwd=REPO, capture_output=True, text=True,
                          env=env, timeout=120)


def test_gc_keeps_unmarked_directories_and_removes_dead_sandboxes(tmp_path):
    root = tmp_path / "sandboxes"
    env = {**os.environ, "PYTHONPATH": str(REPO), "LAB_SANDBOX_DIR": str(root),
           "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}  # only local directories in this test
    leaked = Path(subprocess.run([sys.executable, "-c", _LEAK], env=env, capture_output=True, text=True,
                                 check=True, timeout=120).stdout.strip())
    assert leaked.parent == root and (leaked / "work" / "left.txt").exists()

    unrelated = root / "my-notes"                         # the operator's own folder: no marker
    (unrelated / "sub").mkdir(parents=True)
    (unrelated / "sub" / "keep.txt").write_text("precious")
    forged = root / "other-dir"                           # a marker whose sandbox id is not the folder's
    forged.mkdir()
    (forged / ".owner.json").write_text('{"expertlab.sandbox": "abc", "expertlab.owner": "h:1:1"}')
    broken = root / "abc-broken"                          # a marker that is not JSON
    broken.mkdir()
    (broken / ".owner.json").write_text("{nope")
    odd = root / "abd-odd"                                # a marker whose owner is not a string
    odd.mkdir()
    (odd / ".owner.json").write_text('{"expertlab.sandbox": "abd", "expertlab.owner": ["h", 1]}')
    outside = tmp_path / "outside"                        # a link out of the sandbox root
    outside.mkdir()
    (outside / "keep.txt").write_text("precious")
    (root / "zz-link").symlink_to(outside)

    for args in (["sandbox", "gc"], ["sandbox", "gc", "--all"]):
        r = _lab(env, *args)
        assert r.returncode == 0, r.stderr
        assert not leaked.exists()
        assert not odd.exists()  # the lab's (its id is the folder's), owned by no live process
        assert (unrelated / "sub" / "keep.txt").read_text() == "precious"
        assert forged.is_dir() and broken.is_dir() and (outside / "keep.txt").exists()
        assert (root / "zz-link").is_symlink()
        assert "my-notes" not in r.stdout and "other-dir" not in r.stdout
