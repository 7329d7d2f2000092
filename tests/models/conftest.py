"""Fixtures of the model tests: one embedded SmolLM2 and one ``transformers serve`` of it, shared by every
test that needs the real model or a real OpenAI-compatible server."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from lab.models.embedded import smollm2_dir


@pytest.fixture(scope="session")
def smollm2():
    """The embedded SmolLM2 (loaded once per test session; converted on first use)."""
    from lab.models import load_model

    return load_model("smollm2")


CLI = Path(sys.executable).parent / "transformers"


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """``(base_url, model_id)`` of a running ``transformers serve``."""
    if not CLI.exists() or shutil.which("uvicorn", path=str(CLI.parent)) is None:
        pytest.skip("transformers[serving] is not installed (pip install 'transformers[serving]')")
    model_dir = str(smollm2_dir())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(CLI), "serve", model_dir, "--host", "127.0.0.1", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"transformers serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield f"{url}/v1", model_dir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
