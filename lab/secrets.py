"""Keep secrets (API keys, tokens) out of traces and logs."""

from __future__ import annotations

import os
import re

_PATTERNS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{16,}"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-\.=]{8,}"),
    re.compile(r"hf_[A-Za-z0-9]{20,}"),
]
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.I)
_known: set[str] = set()
MASK = "***"


def register_secret(value: str | None) -> None:
    """Make ``value`` be masked wherever it would be recorded."""
    if value and len(value) >= 6:
        _known.add(value)


def _env_secrets() -> None:
    for k, v in os.environ.items():
        if _SECRET_ENV.search(k):
            register_secret(v)


_env_secrets()


def redact(text: str) -> str:
    """Mask known secrets and anything shaped like an API key in ``text``."""
    for s in _known:
        if s in text:
            text = text.replace(s, MASK)
    if "sk-" in text or "earer" in text or "hf_" in text:
        text = _PATTERNS[0].sub(MASK, text)
        text = _PATTERNS[1].sub(lambda m: m.group(1) + MASK, text)
        text = _PATTERNS[2].sub(MASK, text)
    return text
