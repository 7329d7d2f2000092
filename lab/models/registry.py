"""Model names a user types (``smollm2``, ``hf:/dir``, ``openai:<model>@<url>``, ``scripted:<file>``)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from lab.models.base import ChatModel
from lab.models.errors import ModelNotFound

_cache: dict[tuple, ChatModel] = {}
_lock = threading.Lock()

FORMS = ("smollm2", "hf:<local dir or .gguf file>", "openai:<model>@<base_url>", "vllm:<local dir>",
         "sglang:<local dir>", "scripted:<file.json|yaml>", "scripted:<traces.db>#<run_id>")


def load_model(name: str, **options: Any) -> ChatModel:
    """The chat model a name stands for.

    Local models are loaded once per process and shared (so concurrent agents batch together).

    Args:
        name: ``smollm2`` (the embedded default), ``hf:<dir or .gguf>``, ``openai:<model>@<base_url>``
            (several URLs separated by ``,`` spread the load), ``vllm:<dir>`` / ``sglang:<dir>`` (the engine
            started by this process, see :mod:`lab.models.engines`), ``scripted:<file>`` (JSON/YAML script) or
            ``scripted:<traces.db>#<run_id>`` (exact replay of a recorded run).
        **options: Passed to the backend's constructor (e.g. ``api_key=``, ``timeout=``, ``max_batch=``).

    Returns:
        A :class:`ChatModel`.

    Raises:
        ModelNotFound: The name has none of the known forms, or its files do not exist.
    """
    name = name.strip()
    kind, _, rest = name.partition(":")
    if name == "smollm2":
        from lab.models.embedded import smollm2_dir

        return _shared(("hf", str(smollm2_dir()), _key(options)),
                       lambda: _hf(smollm2_dir(), name="smollm2", **options))
    if kind == "hf" and rest:
        path = Path(rest).expanduser()
        if not path.exists():
            raise ModelNotFound(f"model {name!r}: no such file or directory {path}")
        return _shared(("hf", str(path.resolve()), _key(options)), lambda: _hf(path, name=name, **options))
    if kind == "openai" and rest:
        from lab.models.openai_compat import OpenAIModel

        model, at, urls = rest.partition("@")
        if not model:
            raise ModelNotFound(f"model {name!r}: expected openai:<model>@<base_url>")
        return OpenAIModel(model, base_urls=urls.split(",") if at else None, **options)
    if kind in ("vllm", "sglang") and rest:
        from lab.models.engines import ENGINES, start_engine

        path = Path(rest).expanduser()
        if not path.exists():
            raise ModelNotFound(f"model {name!r}: no such file or directory {path}")
        return _shared((kind, str(path.resolve()), _key(options)),
                       lambda: start_engine(ENGINES[kind], path, name=name, **options))
    if kind == "scripted" and rest:
        from lab.models.scripted import ScriptedModel

        path, _, run_id = rest.partition("#")
        if run_id:
            from lab.traces import TraceStore

            if not Path(path).is_file():
                raise ModelNotFound(f"model {name!r}: no trace store at {path}")
            with TraceStore(path, readonly=True) as store:
                return ScriptedModel.replay(store, run_id)
        return ScriptedModel.from_file(path)
    raise ModelNotFound(f"unknown model name {name!r}; expected one of: {', '.join(FORMS)}")


def _hf(path: Path, *, name: str, **options: Any) -> ChatModel:
    from lab.models.replicas import load_local

    return load_local(path, name=name, **options)


def _key(options: dict[str, Any]) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in options.items()))


def _shared(key: tuple, make: Any) -> ChatModel:
    with _lock:
        model = _cache.get(key)
        if model is None or getattr(model, "closed", False):  # a stopped engine is started again
            model = _cache[key] = make()
        return model
