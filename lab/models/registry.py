"""Model names a user types (``smollm2``, ``hf:/dir``, ``openai:<model>@<url>``, ``scripted:<file>``)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.models.base import ChatModel
from lab.models.errors import ModelNotFound
from lab.models.providers import PROVIDERS, provider_model
from lab.registry import Registry

_Options = tuple[tuple[str, str], ...]
_cache: dict[tuple[str, str, _Options], ChatModel] = {}
_lock = threading.Lock()

FORMS = ("smollm2", "hf:<local dir or .gguf file>", "<provider>:<model>[@<base_url>] (provider: "
         + "|".join(PROVIDERS) + ")", "vllm:<local dir>", "sglang:<local dir>", "scripted:<file.json|yaml>",
         "scripted:<traces.db>#<run_id>")


@dataclass(frozen=True)
class ModelPrefix:
    """How one form of model name is loaded: ``<prefix>:<rest>`` (or the bare name, ``rest`` empty).

    Attributes:
        load: ``load(rest, name, **options)`` returns the model.
        check: ``check(rest, name)`` raises :class:`ModelNotFound` when the name cannot resolve (files,
            form), without loading anything; ``None``: every ``rest`` resolves.
        bare: The name is the prefix alone (``smollm2``), never followed by ``:rest``.
    """

    load: Callable[..., ChatModel]
    check: Callable[[str, str], None] | None = None
    bare: bool = False


MODEL_PREFIXES: Registry[ModelPrefix] = Registry("model name prefix", error=ModelNotFound)
"""Model name forms by prefix (``hf``, ``scripted``, each provider of :mod:`lab.models.providers`; the bare
``smollm2``)."""


def load_model(name: str, **options: Any) -> ChatModel:
    """The chat model a name stands for.

    Local models are loaded once per process and shared (so concurrent agents batch together).

    Args:
        name: ``smollm2`` (the embedded default), ``hf:<dir or .gguf>``, ``<provider>:<model>[@<base_url>]``
            for ``openai``, ``anthropic``, ``google``, ``ollama`` ... (:mod:`lab.models.providers`; several
            URLs separated by ``,`` spread the load), ``vllm:<dir>`` / ``sglang:<dir>`` (the engine
            started by this process, see :mod:`lab.models.engines`), ``scripted:<file>`` (JSON/YAML script) or
            ``scripted:<traces.db>#<run_id>`` (exact replay of a recorded run); or another entry of
            :data:`MODEL_PREFIXES`.
        **options: Passed to the backend's constructor (e.g. ``api_key=``, ``timeout=``, ``max_batch=``).

    Returns:
        A :class:`ChatModel`.

    Raises:
        ModelNotFound: The name has none of the known forms, or its files do not exist.
    """
    name = name.strip()
    prefix, rest = _form(name)
    return prefix.load(rest, name, **options)


def check_model_name(name: str) -> None:
    """Check that ``name`` resolves to a model (form known, files present) without loading it.

    Raises:
        ModelNotFound: As :func:`load_model` would.
    """
    name = name.strip()
    prefix, rest = _form(name)
    if prefix.check is not None:
        prefix.check(rest, name)


def _form(name: str) -> tuple[ModelPrefix, str]:
    kind, sep, rest = name.partition(":")
    if kind in MODEL_PREFIXES:
        prefix = MODEL_PREFIXES.get(kind)
        if (not sep) if prefix.bare else bool(rest):
            return prefix, rest
    raise ModelNotFound(f"unknown model name {name!r}; expected one of: {', '.join(FORMS)}")


def _load_smollm2(rest: str, name: str, **options: Any) -> ChatModel:
    from lab.models.embedded import smollm2_dir

    return _shared(("hf", str(smollm2_dir()), _key(options)), lambda: _hf(smollm2_dir(), name="smollm2", **options))


def _check_hf(rest: str, name: str) -> None:
    path = Path(rest).expanduser()
    if not path.exists():
        raise ModelNotFound(f"model {name!r}: no such file or directory {path}")


def _load_hf(rest: str, name: str, **options: Any) -> ChatModel:
    _check_hf(rest, name)
    path = Path(rest).expanduser()
    return _shared(("hf", str(path.resolve()), _key(options)), lambda: _hf(path, name=name, **options))


def _check_provider(rest: str, name: str) -> None:
    if not rest.partition("@")[0]:
        raise ModelNotFound(f"model {name!r}: expected <provider>:<model>[@<base_url>]")


def _check_scripted(rest: str, name: str) -> None:
    path, _, run_id = rest.partition("#")
    if run_id and not Path(path).is_file():
        raise ModelNotFound(f"model {name!r}: no trace store at {path}")
    if not run_id and not Path(path).is_file():
        raise ModelNotFound(f"model {name!r}: scripted model file not found: {path}")


def _load_scripted(rest: str, name: str, **options: Any) -> ChatModel:
    from lab.models.scripted import ScriptedModel

    path, _, run_id = rest.partition("#")
    if run_id:
        from lab.traces import TraceStore

        if not Path(path).is_file():
            raise ModelNotFound(f"model {name!r}: no trace store at {path}")
        with TraceStore(path, readonly=True) as store:
            return ScriptedModel.replay(store, run_id)
    return ScriptedModel.from_file(path)


def _load_engine(kind: str) -> Callable[..., ChatModel]:
    def load(rest: str, name: str, **options: Any) -> ChatModel:
        from lab.models.engines import ENGINES, start_engine

        _check_hf(rest, name)
        path = Path(rest).expanduser()
        return _shared((kind, str(path.resolve()), _key(options)),
                       lambda: start_engine(ENGINES[kind], path, name=name, **options))
    return load


MODEL_PREFIXES.register("smollm2", ModelPrefix(_load_smollm2, bare=True))
MODEL_PREFIXES.register("hf", ModelPrefix(_load_hf, _check_hf))
for _engine in ("vllm", "sglang"):  # an inference engine this process starts (lab.models.engines)
    MODEL_PREFIXES.register(_engine, ModelPrefix(_load_engine(_engine), _check_hf))
for _kind in PROVIDERS:  # openai:, anthropic:, google:, ollama: ... (lab.models.providers)
    MODEL_PREFIXES.register(_kind, ModelPrefix(
        lambda rest, name, _k=_kind, **options: provider_model(_k, rest, **options), _check_provider))
MODEL_PREFIXES.register("scripted", ModelPrefix(_load_scripted, _check_scripted))


def _hf(path: Path, *, name: str, **options: Any) -> ChatModel:
    from lab.models.replicas import load_local

    return load_local(path, name=name, **options)


def _key(options: dict[str, Any]) -> _Options:
    return tuple(sorted((k, repr(v)) for k, v in options.items()))


def _shared(key: tuple[str, str, _Options], make: Callable[[], ChatModel]) -> ChatModel:
    with _lock:
        model = _cache.get(key)
        if model is None or getattr(model, "closed", False):  # a stopped engine is started again
            model = _cache[key] = make()
        return model
