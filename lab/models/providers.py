"""Hosted and local model providers by name: ``anthropic:claude-sonnet-4-5``, ``google:gemini-2.5-flash`` ...

One table maps each provider to its OpenAI-compatible Chat Completions endpoint and the environment
variables its API key is read from. Every provider here has such an endpoint (Anthropic's and Google's
are their OpenAI-compatibility layers), so all of them go through :class:`~lab.models.OpenAIModel`, which
keeps retries, endpoint failover, tool-call validation and recording the same for every provider. (The
official ``openai`` client was weighed and not used: its retries happen inside one call, so failed attempts
could not be recorded or sent to another endpoint, and the lab's agents do not stream.)

The base URL is, first to last: ``<provider>:<model>@<url>[,<url>...]``, the ``base_url=`` option,
``$LAB_PROVIDER_BASE_URL_<PROVIDER>`` (``openai`` also reads ``$LAB_OPENAI_BASE_URL`` and
``$OPENAI_BASE_URL``), the table. The key is ``api_key=``, ``$LAB_<PROVIDER>_API_KEY``, then the
provider's own variables; it is registered as a secret and never recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from lab.models.errors import ModelNotFound


@dataclass(frozen=True)
class Provider:
    """A provider's OpenAI-compatible endpoint and where its key comes from.

    Attributes:
        name: The prefix in model names (``anthropic`` in ``anthropic:claude-sonnet-4-5``).
        base_url: The OpenAI-compatible base URL (``.../chat/completions`` is appended).
        key_env: Environment variables holding the API key, first found wins.
        needs_key: Whether requests need a key (local servers do not).
        system: The ``gen_ai.system`` recorded with each call.
    """

    name: str
    base_url: str
    key_env: tuple[str, ...]
    needs_key: bool = True
    system: str = ""


PROVIDERS: dict[str, Provider] = {p.name: p for p in (
    Provider("openai", "https://api.openai.com/v1", ("OPENAI_API_KEY",), system="openai"),
    Provider("anthropic", "https://api.anthropic.com/v1", ("ANTHROPIC_API_KEY",), system="anthropic"),
    Provider("google", "https://generativelanguage.googleapis.com/v1beta/openai", ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
             system="gcp.gemini"),
    Provider("together", "https://api.together.xyz/v1", ("TOGETHER_API_KEY",), system="together"),
    Provider("openrouter", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",), system="openrouter"),
    Provider("groq", "https://api.groq.com/openai/v1", ("GROQ_API_KEY",), system="groq"),
    Provider("mistral", "https://api.mistral.ai/v1", ("MISTRAL_API_KEY",), system="mistral_ai"),
    Provider("deepseek", "https://api.deepseek.com/v1", ("DEEPSEEK_API_KEY",), system="deepseek"),
    Provider("fireworks", "https://api.fireworks.ai/inference/v1", ("FIREWORKS_API_KEY",), system="fireworks"),
    Provider("xai", "https://api.x.ai/v1", ("XAI_API_KEY",), system="xai"),
    Provider("ollama", "http://localhost:11434/v1", ("OLLAMA_API_KEY",), needs_key=False, system="ollama"),
)}


def _env_key(name: str) -> str:
    return name.upper().replace("-", "_")


def base_urls(provider: Provider, urls: str | None = None, base_url: str | None = None) -> list[str]:
    """The endpoints of a model name (``urls`` is what follows ``@``), by the precedence above."""
    env = [os.environ.get(f"LAB_PROVIDER_BASE_URL_{_env_key(provider.name)}")]
    if provider.name == "openai":
        env += [os.environ.get("LAB_OPENAI_BASE_URL"), os.environ.get("OPENAI_BASE_URL")]
    chosen = urls or base_url or next((e for e in env if e), None) or provider.base_url
    return [u.strip().rstrip("/") for u in chosen.split(",") if u.strip()]


def api_key(provider: Provider) -> str | None:
    """The provider's key from the environment (``$LAB_<PROVIDER>_API_KEY`` first), or ``None``."""
    for var in (f"LAB_{_env_key(provider.name)}_API_KEY", *provider.key_env):
        if os.environ.get(var):
            return os.environ[var]
    return None


def provider_model(prefix: str, rest: str, **options: Any) -> Any:
    """The :class:`~lab.models.OpenAIModel` for ``<prefix>:<model>[@<url>,...]``.

    Args:
        prefix: A provider name from :data:`PROVIDERS`.
        rest: ``<model>`` or ``<model>@<url>[,<url>...]``.
        **options: ``base_url=``, ``api_key=`` and :class:`~lab.models.OpenAIModel` options.

    Raises:
        ModelNotFound: Unknown provider, no model, or no key for a provider that needs one (the message
            names the variables to set).
    """
    from lab.models.openai_compat import OpenAIModel

    provider = PROVIDERS.get(prefix)
    if provider is None:
        raise ModelNotFound(f"unknown provider {prefix!r}; known: {', '.join(PROVIDERS)}")
    model, at, urls = rest.partition("@")
    if not model:
        raise ModelNotFound(f"model {prefix}:{rest!r}: expected {prefix}:<model>[@<base_url>]")
    urls_ = base_urls(provider, urls if at else None, options.pop("base_url", None))
    key = options.pop("api_key", None) or api_key(provider)
    if key is None and provider.needs_key and urls_ == [provider.base_url]:
        names = " or ".join(f"${v}" for v in (f"LAB_{_env_key(provider.name)}_API_KEY", *provider.key_env))
        raise ModelNotFound(f"model {prefix}:{model}: no API key; set {names}")
    if key is None and provider.name != "openai":
        key = ""  # never send another provider's key (OpenAIModel would fall back to $OPENAI_API_KEY)
    m = OpenAIModel(model, base_urls=urls_, api_key=key, name=options.pop("name", f"{prefix}:{model}"), **options)
    m.system = provider.system or provider.name
    return m
