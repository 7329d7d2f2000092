"""Keep secrets (API keys, tokens, passwords) out of traces, checkpoints, exports, logs and error messages.

:func:`redact` is the one redaction every writer applies: the trace store to run rows and event payloads
(so JSONL and OTLP exports, which copy stored payloads, carry only redacted text), the LangGraph
checkpointer to every checkpoint, and model backends to the error messages they raise. It masks

- values registered with :func:`register_secret` (API keys given to a model, secret-looking environment
  variables, passwords and tokens found in model URLs);
- credentials written into URLs: ``scheme://user:password@host`` and query parameters such as ``key=``,
  ``api_key=``, ``token=``, ``access_token=``, ``sig=``;
- credential headers: ``Authorization: Bearer/Basic ...``, ``api-key``, ``x-api-key``, as text or JSON, and
  ``Bearer <token>`` anywhere;
- strings shaped like well-known keys (``sk-...``, ``hf_...``).
"""

from __future__ import annotations

import os
import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

MASK = "***"

_KEY_SHAPES = re.compile(r"sk-[A-Za-z0-9_\-]{16,}|hf_[A-Za-z0-9]{20,}")
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9_\-\.=+/~]{8,}")
_URL_USERINFO = re.compile(r"://[^/?#@\s\"'<>\\]+@")
_SECRET_PARAMS = (r"(?:api[_-]?key|apikey|key|token|access[_-]?token|auth|secret|client[_-]?secret|password|passwd"
                  r"|pwd|sig|signature)")
_URL_PARAM = re.compile(rf"(?i)([?&;]{_SECRET_PARAMS}=)[^&#\s\"'<>\\]+")
_HEADER = re.compile(r"(?i)\b((?:x-)?api[_-]?key|authorization|proxy-authorization|x-auth-token)"
                     r"(\\?[\"']?\s*[:=]\s*\\?[\"']?)(?!\*\*\*)(?:(?:bearer|basic|token)\s+)?[^\s\"',;\\}]+")
_PARAM_TRIGGERS = ("token=", "auth=", "secret=", "passw", "pwd=", "sig=", "signature=")
_SECRET_ENV = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD)", re.I)
_known: set[str] = set()


def register_secret(value: str | None) -> None:
    """Make ``value`` be masked wherever it would be recorded (values under 6 characters are ignored)."""
    if value and len(value) >= 6:
        _known.add(value)


def register_url_secrets(url: str) -> None:
    """Register the password, the user name and secret query parameters written into ``url``."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return
    for v in (parts.password, parts.username if parts.password is None else None):
        register_secret(v)
    for k, v in parse_qsl(parts.query):
        if re.fullmatch(_SECRET_PARAMS, k, re.I):
            register_secret(v)


def _env_secrets() -> None:
    for k, v in os.environ.items():
        if _SECRET_ENV.search(k):
            register_secret(v)


_env_secrets()


def _suspect(text: str) -> bool:
    """Whether ``text`` may hold a secret: plain substring scans for every pattern's trigger."""
    if any(s in text for s in _known) or ("@" in text and "://" in text):
        return True
    low = text.lower()
    return ("key" in low or "uthoriz" in low or "earer" in low or "sk-" in low or "hf_" in low or "auth-token" in low
            or ("=" in low and any(w in low for w in _PARAM_TRIGGERS)))


def redact(text: str) -> str:
    """``text`` with every secret it holds replaced by ``***`` (see the module's list).

    Substring scans guard the patterns, so text with nothing secret-shaped costs little.
    """
    if not _suspect(text):
        return text
    for s in _known:
        if s in text:
            text = text.replace(s, MASK)
    if "@" in text and "://" in text:
        text = _URL_USERINFO.sub(f"://{MASK}@", text)
    if "=" in text:
        text = _URL_PARAM.sub(lambda m: m.group(1) + MASK, text)
    text = _HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    return _KEY_SHAPES.sub(MASK, text)


def redact_all(texts: list[str]) -> list[str]:
    """:func:`redact` of each text; one scan of them all when none holds anything secret-shaped (the common
    case for a batch of events)."""
    if not texts or not _suspect("\n".join(texts)):
        return texts
    return [redact(t) for t in texts]


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***`` (safe to print), then any other secret redacted."""
    parts = urlsplit(url)
    if parts.password is not None:
        host = parts.netloc.rsplit("@", 1)[1]
        parts = parts._replace(netloc=f"{parts.username}:***@{host}")
    return redact(urlunsplit(parts))
