"""Local models with transformers: CUDA (bf16, ``device_map`` across GPUs) when present, CPU otherwise.

Concurrent ``chat`` calls (agents in threads) are decoded together with continuous batching
(:mod:`lab.models.continuous`): a request joins the running batch at the next step and leaves it when done.
On CUDA the batch size follows from the free memory (:mod:`lab.models.batching`). Tool calls and JSON
replies are constrained to their JSON Schema with xgrammar, so even a 135M model always produces a
schema-valid call.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.models.backend import BaseChatModel, ChatRequest
from lab.models.base import ChatResponse, Message, ToolSpec, Usage
from lab.models.batching import CPU_MAX_BATCH, context_tokens, cuda_max_batch
from lab.models.constrained import bound_schema, instructions, max_chars, parse_reply, reply_schema
from lab.models.continuous import ContinuousBatcher, Request, oom_message
from lab.models.errors import ModelError, ModelNotFound
from lab.models.recording import BOUNDED_SCHEMA

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 256
DEFAULT_CONSTRAINED_MAX_TOKENS = 512


class TransformersModel(BaseChatModel):
    """A local transformers chat model with continuous batching and constrained tool calls.

    Args:
        path: A model directory (``config.json`` + weights) or a ``.gguf`` file (converted once to a
            safetensors cache).
        name: Name recorded with each call (default: the path).
        device: ``"cuda"``, ``"cuda:N"`` (that GPU only), ``"cpu"`` or ``"auto"`` (CUDA when available;
            ``device_map="auto"`` spreads a model larger than one GPU over the GPUs and CPU memory).
        max_batch: Most requests decoded together (default: 8 on CPU; on CUDA as many as the free memory
            holds, see :func:`lab.models.batching.default_max_batch`).
        batch_wait: Seconds an idle worker waits for more requests before it starts (the batching window).
        max_wait: Longest the worker waits past the window for callers still preparing their prompts.
        compile_decode: On CUDA, decode on static shapes through ``torch.compile`` (CUDA graphs); ignored on
            CPU.

    Raises:
        ModelNotFound: The path does not exist, is not a model, or fails to load.
        ModelError: CUDA ran out of memory while loading.
    """

    system = "transformers"
    path: Path | None
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase

    def __init__(self, path: str | Path, *, name: str | None = None, device: str = "auto",
                 max_batch: int | None = None, batch_wait: float = 0.01, max_wait: float = 0.25,
                 compile_decode: bool = False) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path).expanduser()
        self.name = name or f"hf:{path}"
        if not path.exists():
            raise ModelNotFound(f"model {self.name}: no such file or directory {path}")
        if path.is_file():
            if path.suffix.lower() != ".gguf":
                raise ModelNotFound(f"model {self.name}: {path} is neither a model directory nor a .gguf file")
            from lab.models.embedded import converted_gguf_dir

            path = converted_gguf_dir(path)
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"model {self.name}: {path} has no config.json (not a transformers model dir)")
        self.path = path
        use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelError(f"model {self.name}: device={device!r} requested but no CUDA device is available")
        kwargs: dict[str, Any] = {}
        if use_cuda:
            kwargs["dtype"] = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            kwargs["device_map"] = device if device.startswith("cuda:") else "auto"  # one GPU, or spread
        else:
            kwargs["dtype"] = torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
        except torch.OutOfMemoryError as e:
            raise ModelError(oom_message(self.name, "loading the model")) from e
        except (OSError, ValueError) as e:
            raise ModelNotFound(f"model {self.name}: cannot load {path}: {e}") from e
        if not use_cuda:
            # transformers wraps Module.to with functools.wraps, which types it as the unbound method
            self.model.to("cpu")  # type: ignore[arg-type]
        self._setup(max_batch=max_batch, batch_wait=batch_wait, max_wait=max_wait, compile_decode=compile_decode)

    @classmethod
    def from_model(cls, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, name: str,
                   max_batch: int | None = None, batch_wait: float = 0.01, max_wait: float = 0.25,
                   compile_decode: bool = False) -> TransformersModel:
        """Wrap a causal LM and tokenizer already in memory (on their device) as a chat model."""
        self = cls.__new__(cls)
        self.name, self.path, self.model, self.tokenizer = name, None, model, tokenizer
        self._setup(max_batch=max_batch, batch_wait=batch_wait, max_wait=max_wait, compile_decode=compile_decode)
        return self

    def _setup(self, *, max_batch: int | None, batch_wait: float, max_wait: float, compile_decode: bool) -> None:
        self.model.eval()  # type: ignore[no-untyped-call]  # transformers leaves PreTrainedModel.eval unannotated
        self.device = self.model.device
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = self.model.generation_config.eos_token_id
        eos = eos if eos is not None else self.tokenizer.eos_token_id
        self._eos = set(eos if isinstance(eos, list) else [eos])
        template = self.tokenizer.chat_template or ""
        self._native_tools = "tools" in template
        if max_batch is None:
            max_batch = CPU_MAX_BATCH
            if self.device.type == "cuda":
                max_batch, _ = cuda_max_batch(self.model.config, self.model.dtype.itemsize, self.device.index or 0)
        self.max_batch = max_batch
        self._tok_lock = threading.Lock()
        self._grammar_lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        self._compiler: Any = None
        self.batcher = ContinuousBatcher(self.model, self.tokenizer, eos=self._eos, name=self.name,
                                         max_batch=max_batch, batch_wait=batch_wait, max_wait=max_wait,
                                         compile_decode=compile_decode and self.device.type == "cuda",
                                         context=context_tokens(self.model.config), tok_lock=self._tok_lock)

    @property
    def batches(self) -> list[int]:
        """Rows of each decode step so far (for tests and benchmarks)."""
        return self.batcher.batches

    # -- the ChatModel interface -----------------------------------------------------------------

    def _chat(self, req: ChatRequest) -> ChatResponse:
        """Answer one attempt (see :class:`lab.models.ChatModel`).

        With ``tools`` (and ``tool_choice`` other than ``none``) or a ``response_schema``, the reply is
        constrained to the schema from :func:`lab.models.constrained.reply_schema`, with string lengths
        bounded so the whole reply fits in ``max_tokens`` (raised when even the shortest bounds cannot fit).

        Raises:
            ModelError: CUDA out of memory, or generation failed.
            ModelOutputError: The constrained reply was cut by ``max_tokens`` (retryable).
        """
        messages, tools, response_schema, sampling = req.messages, req.tools, req.response_schema, req.sampling
        self.batcher.begin()
        try:
            schema = reply_schema(tools, sampling.tool_choice, response_schema)
            default_max = DEFAULT_MAX_TOKENS if schema is None else DEFAULT_CONSTRAINED_MAX_TOKENS
            max_new = sampling.max_tokens or default_max
            grammar = None
            if schema is not None:
                bounded = bound_schema(schema, max_new, reserve=1)  # one token left for end-of-sequence
                max_new = max(max_new, max_chars(bounded) + 1)  # a budget too small for any reply is raised
                grammar = self._grammar(bounded)
            prompt = self.prompt_ids(messages, tools, sampling.tool_choice, response_schema)
            work = Request(prompt, max_new, grammar, temperature=sampling.temperature or None,
                           top_p=sampling.top_p, seed=sampling.seed, stop=tuple(sampling.stop or ()))
        except BaseException:
            self.batcher.cancel()
            raise
        self.batcher.submit(work)
        (text,) = self.tokenizer.batch_decode([work.tokens], skip_special_tokens=True)
        finish = "stop" if work.hit_eos else "length"
        for s in sampling.stop or ():
            if s in text:
                text, finish = text[: text.index(s)], "stop"
        usage = Usage(len(prompt), len(work.tokens))
        if schema is None:
            return ChatResponse(Message("assistant", text), finish_reason=finish, usage=usage, model=self.name)
        msg, parsed = parse_reply(text, tools, sampling.tool_choice, response_schema, where=self.name)
        return ChatResponse(msg, finish_reason="tool_calls" if msg.tool_calls else finish, usage=usage,
                            model=self.name, parsed=parsed, attrs={BOUNDED_SCHEMA: bounded})

    # -- prompts ---------------------------------------------------------------------------------

    def prompt_ids(self, messages: list[Message], tools: list[ToolSpec] | None = None,
                   tool_choice: str | None = None, response_schema: dict[str, Any] | None = None) -> list[int]:
        """The prompt's token ids: the chat template applied (with tools where the template takes them)."""
        native = self._native_tools and bool(tools)
        msgs = [self._message_dict(m, native) for m in messages]
        extra = instructions(None if native else tools, tool_choice, response_schema)
        if native and (tool_choice or "auto") != "none":
            extra = (extra + "\n" if extra else "") + ('Call a tool by replying {"name": "<tool>", '
                                                       '"arguments": {...}}.')
        if extra:
            if msgs and msgs[0]["role"] == "system":
                msgs[0] = {**msgs[0], "content": f"{msgs[0]['content']}\n\n{extra}"}
            else:
                msgs.insert(0, {"role": "system", "content": extra})
        kwargs: dict[str, Any] = {"tools": [t.to_dict() for t in tools]} if native and tools else {}
        with self._tok_lock:
            try:
                text = self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, **kwargs)
            except Exception:  # noqa: BLE001 - templates that reject the tool role get tool results as user turns
                msgs = [{"role": "user", "content": f"Tool result: {m['content']}"} if m["role"] == "tool" else m
                        for m in msgs]
                text = self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, **kwargs)
            ids: list[int] = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            return ids

    @staticmethod
    def _message_dict(m: Message, native_tools: bool) -> dict[str, Any]:
        if m.tool_calls and not native_tools:
            calls = [json.dumps({"name": c.name, "arguments": c.arguments}) for c in m.tool_calls]
            return {"role": m.role, "content": "\n".join(filter(None, [m.content, *calls]))}
        return m.to_dict()

    # -- constrained decoding --------------------------------------------------------------------

    def _grammar(self, schema: dict[str, Any]) -> Any:
        import xgrammar as xgr

        key = json.dumps(schema, sort_keys=True)
        with self._grammar_lock:
            if key not in self._grammars:
                if self._compiler is None:
                    info = xgr.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=self.model.config.vocab_size,
                                                              stop_token_ids=sorted(self._eos))
                    self._compiler = xgr.GrammarCompiler(info)
                try:
                    self._grammars[key] = self._compiler.compile_json_schema(key, any_whitespace=False)
                except Exception as e:  # noqa: BLE001 - xgrammar raises RuntimeError for unsupported schemas
                    raise ModelError(f"model {self.name}: cannot constrain to this JSON Schema: {e}") from e
            return self._grammars[key]

    def close(self) -> None:
        """Finish the running requests and stop the batch worker (the next call starts a new one)."""
        self.batcher.close()
