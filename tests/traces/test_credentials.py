"""Credentials written into a model URL never reach the store, the checkpoints, an export or an error line.

A real experiment (`lab run`, DERA loop) runs against the loopback OpenAI-compatible server of the model tests,
with a user and key in the model's base URL; the server first sends a malformed reply (the error that used to
print the key), then valid ones. Every file the run leaves is then searched for the secrets, byte by byte.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from fake_server import FakeServer, completion  # noqa: E402

from lab.secrets import MASK, redact  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
USER, KEY = "labuser", "Zq7-credential-4xT9"  # shaped like nothing redact() would guess


def _lab(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if "KEY" not in k and "TOKEN" not in k}
    return subprocess.run([sys.executable, "-m", "lab.cli.main", *args], cwd=cwd, capture_output=True, text=True,
                          env={**env, "PYTHONPATH": str(REPO)}, timeout=300)


def test_model_url_credentials_are_redacted_everywhere(tmp_path):
    replies = [(200, b"<html>oops</html>", {}),                                   # malformed: retried, recorded
               (200, completion(json.dumps({"answer": "4", "explanation": "2+2"})), {}),
               (200, completion(json.dumps({"message": "fine", "done": True})), {}),
               (200, completion(json.dumps({"message": "agreed", "answer": "4", "final": True})), {})]
    (tmp_path / "tasks.yaml").write_text(  # the question itself carries a credential URL into the loop's state
        f"id: sum\ninstructions: 'What is 2+2? (notes: https://{USER}:{KEY}@wiki.example/sum)'\nanswer: '4'\n"
        "scoring: {scorer: exact_match}\n")
    with FakeServer(replies) as srv:
        url = srv.url.replace("http://", f"http://{USER}:{KEY}@")
        (tmp_path / "exp.yaml").write_text(json.dumps({
            "name": "creds", "tasks": ["./tasks.yaml"], "loops": [{"loop": "dera", "options": {"kind": "qa"}}],
            "models": [f"openai:fake@{url}"], "budgets": {"steps": 1}, "judge_fallback": False}))
        db = tmp_path / "traces.db"
        r = _lab("run", "exp.yaml", "--store", str(db), "--no-progress", cwd=tmp_path)
        assert srv.headers and srv.headers[0]["Authorization"].startswith("Basic ")  # the key was used
    assert " done " in f" {r.stdout} " or "done=1" in r.stdout, r.stdout + r.stderr
    export = tmp_path / "runs.jsonl"
    assert _lab("runs", "export", "--store", str(db), "-o", str(export), cwd=tmp_path).returncode == 0
    shown = _lab("runs", "list", "--store", str(db), cwd=tmp_path)
    files = [p for p in tmp_path.iterdir() if p.is_file() and p.name not in ("exp.yaml", "tasks.yaml")]
    assert {db.name, "traces.checkpoints.db", export.name} <= {p.name for p in files}
    for p in files:
        data = p.read_bytes()
        assert KEY.encode() not in data and f"{USER}:".encode() not in data, p.name
    for out in (r.stderr, shown.stdout, shown.stderr):  # `lab run`'s per-run stdout line is lab/cli/run.py's
        assert KEY not in out
    text = export.read_text()
    assert "malformed response" in text and f"http://{MASK}@127.0.0.1" in text  # the error, redacted


@pytest.mark.parametrize("raw, secret", [
    ("https://bob:hunter2hunter2@api.example.com/v1", "hunter2hunter2"),
    ("https://api.example.com/v1?api_key=QWERTY123456&x=1", "QWERTY123456"),
    ("wss://host/stream?token=abc.def.ghi", "abc.def.ghi"),
    ("GET /v1/models?key=AIzaSyA1b2c3", "AIzaSyA1b2c3"),
    ('{"Authorization": "Basic Ym9iOmh1bnRlcjI="}', "Ym9iOmh1bnRlcjI="),
    ('{"headers": {"x-api-key": "k-778899aabb"}}', "k-778899aabb"),
    ("Authorization: Bearer eyJhbGciOi.payload.sig", "eyJhbGciOi.payload.sig"),
    ("api-key: 0123456789abcdef", "0123456789abcdef"),
    ("HF token hf_abcdefghijklmnopqrstuvwx", "hf_abcdefghijklmnopqrstuvwx"),
    ("OpenAI key sk-proj-abcdefghijklmnop1234", "sk-proj-abcdefghijklmnop1234"),
])
def test_redact_masks_credentials_and_is_idempotent(raw, secret):
    out = redact(raw)
    assert secret not in out and MASK in out and redact(out) == out


def test_redact_leaves_ordinary_text_alone():
    text = ('see https://example.com/a?b=1 and {"key": "value", "tokens": 12} for x=1&y=2; basic algebra is key, '
            'the monkey passed the keyboard; mailto:a@b.org; {"gen_ai.usage.input_tokens": 3}')
    assert redact(text) == text
