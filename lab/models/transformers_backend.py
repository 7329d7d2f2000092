"""Local models with transformers: CUDA (bf16, ``device_map`` across GPUs) when present, CPU otherwise.

Concurrent ``chat`` calls (agents in threads) are batched into one ``generate`` call: a worker collects
requests for a short window, pads them on the left and generates them together. Tool calls and JSON
replies are constrained to their JSON Schema with xgrammar, so even a 135M model always produces a
schema-valid call.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.models.base import ChatResponse, Message, Sampling, ToolSpec, Usage
from lab.models.constrained import bound_schema, instructions, max_chars, parse_reply, reply_schema
from lab.models.errors import ModelError, ModelNotFound
from lab.models.recording import BOUNDED_SCHEMA, call_attrs, record_call

log = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 256
DEFAULT_CONSTRAINED_MAX_TOKENS = 512


@dataclass(eq=False)
class _Request:
    """One prompt waiting for the batch worker."""

    input_ids: list[int]
    max_new_tokens: int
    key: tuple  # requests with equal keys can share one generate call
    grammar: Any = None  # xgrammar CompiledGrammar, or None for free text
    done: threading.Event = field(default_factory=threading.Event)
    tokens: list[int] = field(default_factory=list)
    hit_eos: bool = False
    error: BaseException | None = None


class TransformersModel:
    """A local transformers chat model with dynamic batching and constrained tool calls.

    Args:
        path: A model directory (``config.json`` + weights) or a ``.gguf`` file (converted once to a
            safetensors cache).
        name: Name recorded with each call (default: the path).
        device: ``"cuda"``, ``"cuda:N"`` (that GPU only), ``"cpu"`` or ``"auto"`` (CUDA when available;
            ``device_map="auto"`` spreads a model larger than one GPU over the GPUs and CPU memory).
        max_batch: Most requests generated together.
        batch_wait: Seconds the worker waits for more requests before generating (the batching window).
        max_wait: Longest the worker waits past the window for callers still preparing their prompts.

    Raises:
        ModelNotFound: The path does not exist, is not a model, or fails to load.
        ModelError: CUDA ran out of memory while loading.
    """

    system = "transformers"

    def __init__(self, path: str | Path, *, name: str | None = None, device: str = "auto",
                 max_batch: int = 8, batch_wait: float = 0.01, max_wait: float = 0.25) -> None:
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
            raise ModelError(_oom_message(self.name, "loading the model")) from e
        except (OSError, ValueError) as e:
            raise ModelNotFound(f"model {self.name}: cannot load {path}: {e}") from e
        if not use_cuda:
            self.model.to("cpu")
        self.model.eval()
        self.device = self.model.device
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        eos = self.model.generation_config.eos_token_id
        eos = eos if eos is not None else self.tokenizer.eos_token_id
        self._eos = set(eos if isinstance(eos, list) else [eos])
        template = self.tokenizer.chat_template or ""
        self._native_tools = "tools" in template
        self.max_batch = max_batch
        self.batch_wait = batch_wait
        self.max_wait = max_wait
        self._tok_lock = threading.Lock()
        self._grammar_lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        self._compiler: Any = None
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._worker_lock = threading.Lock()
        self._preparing = 0  # callers inside chat() that have not queued their request yet
        self.batches: list[int] = []  # sizes of the generate calls made (for tests and benchmarks)

    # -- the ChatModel interface -----------------------------------------------------------------

    def chat(
        self,
        messages: list[Message],
        *,
        tools: list[ToolSpec] | None = None,
        response_schema: dict[str, Any] | None = None,
        sampling: Sampling | None = None,
        recorder: Any | None = None,
        agent: str | None = None,
    ) -> ChatResponse:
        """Answer ``messages`` (see :class:`lab.models.ChatModel`).

        With ``tools`` (and ``tool_choice`` other than ``none``) or a ``response_schema``, the reply is
        constrained to the schema from :func:`lab.models.constrained.reply_schema`, with string lengths
        bounded so the whole reply fits in ``max_tokens`` (raised when even the shortest bounds cannot fit).

        Raises:
            ModelError: CUDA out of memory, or generation failed.
            ModelOutputError: The constrained reply was cut by ``max_tokens`` (retryable).
        """
        t0 = time.perf_counter()
        sampling = sampling or Sampling()
        try:
            resp = self._chat(messages, tools, response_schema, sampling)
        except ModelError as e:
            record_call(recorder, call_attrs(system=self.system, model=self.name, messages=messages, tools=tools,
                                             response_schema=response_schema, sampling=sampling, error=e,
                                             latency=time.perf_counter() - t0), agent=agent)
            raise
        resp.latency = time.perf_counter() - t0
        record_call(recorder, call_attrs(system=self.system, model=self.name, messages=messages, tools=tools,
                                         response_schema=response_schema, sampling=sampling, response=resp),
                    agent=agent)
        return resp

    def _chat(self, messages: list[Message], tools: list[ToolSpec] | None, response_schema: dict[str, Any] | None,
              sampling: Sampling) -> ChatResponse:
        with self._worker_lock:
            self._preparing += 1
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
            do_sample = bool(sampling.temperature)
            key = (grammar is not None, do_sample, sampling.temperature if do_sample else None,
                   sampling.top_p if do_sample else None, sampling.seed if do_sample else None,
                   tuple(sampling.stop or ()))
            req = _Request(prompt, max_new, key, grammar)
        except BaseException:
            with self._worker_lock:
                self._preparing -= 1
            raise
        self._submit(req)
        text = self.tokenizer.decode(req.tokens, skip_special_tokens=True)
        finish = "stop" if req.hit_eos else "length"
        for s in sampling.stop or ():
            if s in text:
                text, finish = text[: text.index(s)], "stop"
        usage = Usage(len(prompt), len(req.tokens))
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
        kwargs: dict[str, Any] = {"tools": [t.to_dict() for t in tools]} if native else {}
        with self._tok_lock:
            try:
                text = self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, **kwargs)
            except Exception:  # noqa: BLE001 - templates that reject the tool role get tool results as user turns
                msgs = [{"role": "user", "content": f"Tool result: {m['content']}"} if m["role"] == "tool" else m
                        for m in msgs]
                text = self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True, **kwargs)
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]

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

    # -- dynamic batching ------------------------------------------------------------------------

    def _submit(self, req: _Request) -> None:
        with self._worker_lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._loop, name=f"batcher:{self.name}", daemon=True)
                self._worker.start()
            self._queue.put(req)
            self._preparing -= 1
        req.done.wait()
        if req.error is not None:
            raise req.error

    def close(self) -> None:
        """Stop the batch worker (the model stays usable: the next call starts a new one)."""
        with self._worker_lock:
            if self._worker is not None and self._worker.is_alive():
                self._queue.put(None)
                self._worker.join()
            self._worker = None

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            start = time.monotonic()
            while len(batch) < self.max_batch:
                # wait out the window; past it, keep waiting (up to max_wait) while callers that already
                # entered chat() are still preparing their prompts
                now = time.monotonic()
                wait = start + self.batch_wait - now
                if wait <= 0:
                    if self._preparing == 0 or now > start + self.max_wait:
                        break
                    wait = 0.002
                try:
                    nxt = self._queue.get(timeout=wait)
                except queue.Empty:
                    continue
                if nxt is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(nxt)
            groups: dict[tuple, list[_Request]] = {}
            for r in batch:
                groups.setdefault(r.key, []).append(r)
            for group in groups.values():
                self._run(group)

    def _run(self, group: list[_Request]) -> None:
        """Generate one group of compatible requests; on CUDA OOM, retry in halves."""
        import torch

        try:
            self._generate(group)
        except torch.OutOfMemoryError:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if len(group) > 1:
                half = len(group) // 2
                self._run(group[:half])
                self._run(group[half:])
                return
            err: BaseException = ModelError(_oom_message(self.name, f"generating {group[0].max_new_tokens} tokens "
                                                                    f"after a {len(group[0].input_ids)}-token prompt"))
            self._finish(group, err)
        except Exception as e:  # noqa: BLE001 - every waiting caller gets the failure, never a hang
            self._finish(group, ModelError(f"model {self.name}: generation failed: {type(e).__name__}: {e}"))
        else:
            self._finish(group, None)

    @staticmethod
    def _finish(group: list[_Request], error: BaseException | None) -> None:
        for r in group:
            r.error = error
            r.done.set()

    def _generate(self, group: list[_Request]) -> None:
        import torch

        with self._tok_lock:
            enc = self.tokenizer.pad({"input_ids": [r.input_ids for r in group]}, padding=True, return_tensors="pt")
        ids = enc["input_ids"].to(self.device)
        mask = enc["attention_mask"].to(self.device)
        do_sample, temperature, top_p, seed, stop = group[0].key[1:]
        kwargs: dict[str, Any] = {"max_new_tokens": max(r.max_new_tokens for r in group), "do_sample": do_sample,
                                  "pad_token_id": self.tokenizer.pad_token_id, "eos_token_id": sorted(self._eos)}
        if do_sample:
            kwargs.update(temperature=temperature, top_p=top_p if top_p is not None else 1.0, top_k=0)
            if seed is not None:
                torch.manual_seed(seed)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if stop:
            kwargs.update(stop_strings=list(stop), tokenizer=self.tokenizer)
        if group[0].grammar is not None:
            from xgrammar.contrib.hf import LogitsProcessor

            kwargs["logits_processor"] = [LogitsProcessor([r.grammar for r in group])]
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
        self.batches.append(len(group))
        new = out[:, ids.shape[1]:].tolist()
        for r, row in zip(group, new):
            row = row[: r.max_new_tokens]
            cut = next((i for i, t in enumerate(row) if t in self._eos), None)
            r.hit_eos = cut is not None
            r.tokens = row[:cut] if cut is not None else row


def _oom_message(name: str, doing: str) -> str:
    return (f"model {name}: CUDA out of memory {doing}; use a smaller max_batch or max_tokens, a smaller model, "
            f"or serve the model with vLLM/SGLang and use openai:<model>@<url>")
