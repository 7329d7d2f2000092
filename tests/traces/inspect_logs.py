"""Inspect AI logs made in the test: a real ``inspect eval`` of the arith task (``mockllm`` model, ``local``
sandbox), and the human_agent-style log built from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TASK_DIR = Path(__file__).resolve().parents[1] / "data" / "inspect"
HUMAN_LOG = TASK_DIR / "human_agent_arith.json"


def inspect_eval(log_dir: Path, *, log_format: str = "eval", epochs: int = 2) -> Path:
    """Run ``inspect eval arith_task.py`` offline; return the log file it wrote."""
    pytest.importorskip("inspect_ai", reason="needs the inspect extra: pip install 'expertlab[inspect]'")
    exe = Path(sys.executable).with_name("inspect")
    cmd = [str(exe), "eval", "arith_task.py", "--model", "mockllm/model", "--log-dir", str(log_dir),
           "--log-format", log_format, "--display", "plain", "-T", f"epochs={epochs}"]
    res = subprocess.run(cmd, cwd=TASK_DIR, capture_output=True, text=True, timeout=300)
    logs = sorted(log_dir.glob(f"*.{log_format}"))
    assert res.returncode == 0 and len(logs) == 1, res.stdout[-3000:] + res.stderr[-3000:]
    return logs[0]


def human_log(src: Path, dst: Path) -> Path:
    """The human_agent-style log of the arith task, built from the agent log ``src``."""
    sys.path.insert(0, str(TASK_DIR))
    try:
        from human_log import human_log as build
    finally:
        sys.path.remove(str(TASK_DIR))
    build(str(src), str(dst))
    return dst
