"""Continuous batching for a local transformers model: a request joins the running batch at the next decode
step and leaves it when it is done, so a short reply never waits for a long one.

One worker thread owns the model. Each step it prefills the requests that arrived (left-padded together, one
``forward`` with a ``DynamicCache``), copies their keys and values into the :class:`SlotCache` of the running
batch, and decodes one token for every running request with one ``forward`` over that cache. Every request
samples by its own settings and, when constrained, through its own xgrammar matcher.

On CUDA, ``compile_decode`` runs the decode step on static shapes (the batch padded to a power of two, the
cache at its full length) through ``torch.compile(mode="reduce-overhead")``, i.e. CUDA graphs, which removes
the per-kernel launch overhead that bounds decoding of one or a few requests.
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lab.models.errors import ModelError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

MAX_RECORDED_STEPS = 100_000


@dataclass(eq=False)
class Request:
    """One prompt for the batcher, with how to sample it; ``tokens``/``hit_eos``/``error`` are its result."""

    input_ids: list[int]
    max_new_tokens: int
    grammar: Any = None  # xgrammar CompiledGrammar, or None for free text
    temperature: float | None = None  # None or 0: greedy
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    done: threading.Event = field(default_factory=threading.Event)
    tokens: list[int] = field(default_factory=list)
    hit_eos: bool = False
    error: BaseException | None = None
    # running state
    matcher: Any = None
    generator: Any = None
    last: int = 0  # the token fed to the next decode step
    pos: int = 0  # its position
    start: int = 0  # the first cache column of this request


class SlotCache:
    """The KV cache of the running batch, in the shape transformers' attention layers call ``update`` on.

    Row ``i`` holds running request ``i``; every row writes its next token's keys and values at the shared
    column ``ptr``, and ``valid`` masks the columns before a row's first token (and any left padding). With
    ``static=False`` the tensors grow as needed and a step attends only to the live window
    ``[lo, ptr]`` of the running rows; with ``static=True`` they are allocated once at ``rows`` x ``cols`` and a
    step sees the first ``MIN_COLS * 2**k`` columns that hold ``ptr`` (a few fixed shapes for CUDA graphs).
    """

    MIN_COLS = 256

    def __init__(self, n_layers: int, *, static: bool = False, rows: int = 8, cols: int = 256) -> None:
        self.n_layers = n_layers
        self.static = static
        self.rows_cap, self.cols_cap = rows, cols
        self.keys: list[Any] = []
        self.values: list[Any] = []
        self.valid: Any = None
        self.n = 0  # running rows
        self.ptr = 0
        self.lo = 0
        self.ptr_t: Any = None  # ptr as a tensor (static mode)
        self.step_mask: Any = None  # the attention mask of the step being run (static mode)

    # -- the interface transformers' layers call ------------------------------------------------

    def update(self, key: Any, value: Any, layer_idx: int, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
        """Store one decode step's keys/values (``[rows, kv_heads, 1, head_dim]``); return what to attend to."""
        k, v = self.keys[layer_idx], self.values[layer_idx]
        r = key.shape[0]  # a shape, not an attribute, so a compiled step is not specialised on it
        if self.static:
            c = self.step_mask.shape[-1]  # the column bucket of this step
            k[:r].index_copy_(2, self.ptr_t, key)
            v[:r].index_copy_(2, self.ptr_t, value)
            return k[:r, :, :c], v[:r, :, :c]
        k[:r, :, self.ptr] = key[:, :, 0]
        v[:r, :, self.ptr] = value[:, :, 0]
        return k[:r, :, self.lo: self.ptr + 1], v[:r, :, self.lo: self.ptr + 1]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """The column the next step writes (transformers derives positions from it)."""
        return self.ptr

    def get_mask_sizes(self, *args: Any, **kwargs: Any) -> tuple[int, int]:
        """``(columns attended to, offset of the first)`` for transformers' attention mask."""
        return (self.cols_cap, 0) if self.static else (self.ptr + 1 - self.lo, self.lo)

    @property
    def is_compileable(self) -> bool:
        """Whether the cache keeps static shapes (so a decode step can be compiled)."""
        return self.static

    # -- managing rows and columns --------------------------------------------------------------

    def allocate(self, like: Any) -> None:
        """Allocate the tensors with the dtype, device, heads and head size of ``like`` (one layer's keys)."""
        import torch

        _, heads, _, dim = like.shape
        shape = (self.rows_cap, heads, self.cols_cap, dim)
        self.keys = [torch.zeros(shape, dtype=like.dtype, device=like.device) for _ in range(self.n_layers)]
        self.values = [torch.zeros(shape, dtype=like.dtype, device=like.device) for _ in range(self.n_layers)]
        self.valid = torch.zeros(self.rows_cap, self.cols_cap, dtype=torch.bool, device=like.device)
        self.ptr_t = torch.zeros(1, dtype=torch.long, device=like.device)
        if self.static:
            for t in self.keys + self.values:
                torch._dynamo.mark_static_address(t)

    def _resize(self, rows: int, cols: int) -> None:
        import torch

        def grow(t: Any, fill: Any) -> Any:
            new = torch.full((rows, *t.shape[1:-2], cols, t.shape[-1]) if t.dim() == 4 else (rows, cols), fill,
                             dtype=t.dtype, device=t.device)
            if t.dim() == 4:
                new[: self.n, :, : self.cols_cap] = t[: self.n]
            else:
                new[: self.n, : self.cols_cap] = t[: self.n]
            return new

        self.keys = [grow(t, 0) for t in self.keys]
        self.values = [grow(t, 0) for t in self.values]
        self.valid = grow(self.valid, False)
        self.rows_cap, self.cols_cap = rows, cols

    def _shift(self, d: int) -> None:
        """Move every running row's columns by ``d`` (right when positive)."""
        a, b = self.lo, self.ptr
        for t in self.keys + self.values:
            t[: self.n, :, a + d: b + d] = t[: self.n, :, a:b].clone()
        block = self.valid[: self.n, a:b].clone()
        self.valid[: self.n] = False
        self.valid[: self.n, a + d: b + d] = block
        self.ptr += d
        self.lo += d

    def make_room(self, rows: int, left: int) -> int:
        """Make room for ``rows`` more rows whose prompts need ``left`` columns before ``ptr``, and for one
        more decode column; returns the shift applied to the running rows' columns."""
        if self.n == 0:
            self.ptr = self.lo = left
            self.valid.zero_()
            shift = 0
        else:
            shift = max(0, left - self.ptr)
            over = self.ptr + shift + 1 - self.cols_cap
            if over > 0:  # compact: drop columns no running row uses
                shift -= min(over, self.lo + shift, self.ptr + shift - left)
        need_rows, need_cols = self.n + rows, max(self.ptr + shift, left) + 1
        if need_rows > self.rows_cap or need_cols > self.cols_cap:
            if self.static:
                raise ModelError(f"the running batch's KV cache ({self.rows_cap} rows x {self.cols_cap} tokens) "
                                 f"cannot hold {need_rows} rows x {need_cols} tokens")
            self._resize(max(self.rows_cap, _pow2(need_rows)), max(self.cols_cap, _pow2(need_cols)))
        if shift:
            self._shift(shift)
        return shift

    def add(self, prefill: Any, mask: Any) -> int:
        """Append rows from a prefill ``DynamicCache`` whose prompts are left-padded to one length (``mask`` is
        their 2-D attention mask); returns the first new row."""
        g, length = mask.shape
        first = self.n
        a = self.ptr - length
        for layer, (k, v) in enumerate(zip(self.keys, self.values, strict=True)):
            src = prefill.layers[layer]
            k[first: first + g, :, a: self.ptr] = src.keys
            v[first: first + g, :, a: self.ptr] = src.values
        self.valid[first: first + g] = False
        self.valid[first: first + g, a: self.ptr] = mask.bool()
        self.n += g
        self.lo = min(self.lo, a) if first else a
        return first

    def remove(self, row: int, starts: list[int]) -> None:
        """Drop a running row (the last row moves into its place); ``starts`` are the remaining rows' starts."""
        last = self.n - 1
        if row != last:
            for t in self.keys + self.values:
                t[row] = t[last]
            self.valid[row] = self.valid[last]
        self.valid[last] = False
        self.n -= 1
        if self.n:
            self.lo = min(starts)

    def advance(self) -> None:
        """Move to the next column after a decode step."""
        self.ptr += 1

    def step_cols(self) -> int:
        """Columns a static step attends to: the smallest bucket that holds ``ptr``."""
        return min(self.cols_cap, max(self.MIN_COLS, _pow2(self.ptr + 1)))

    def compact(self) -> int:
        """In static mode, move the running rows to column 0 once the unused columns before them outnumber
        the used ones (so steps stay in small column buckets); returns the shift applied."""
        if not self.static or self.n == 0 or self.lo < max(self.MIN_COLS // 2, self.ptr - self.lo):
            return 0
        shift = -self.lo
        self._shift(shift)
        return shift


def _pow2(n: int) -> int:
    return 1 << max(0, n - 1).bit_length()


class ContinuousBatcher:
    """Runs :class:`Request` s on a causal LM with continuous batching (see the module docstring).

    Args:
        model: A transformers causal LM (eval mode).
        tokenizer: Its tokenizer (for padding and stop strings); ``tok_lock`` guards it across threads.
        eos: End-of-sequence token ids.
        name: The model's name, for error messages.
        max_batch: Most requests running together; more wait for a row.
        batch_wait: Seconds an idle worker waits for more requests before the first prefill.
        max_wait: Longest it waits past that window for callers still preparing their prompts.
        compile_decode: Decode on static shapes with ``torch.compile`` (CUDA graphs); CUDA only.
        context: Tokens a request may use in all (the static cache's length).
    """

    def __init__(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, *, eos: set[int], name: str,
                 max_batch: int, batch_wait: float = 0.01, max_wait: float = 0.25, compile_decode: bool = False,
                 context: int = 4096, tok_lock: threading.Lock | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.eos = eos
        self.name = name
        self.max_batch = max_batch
        self.batch_wait = batch_wait
        self.max_wait = max_wait
        self.context = context
        self.tok_lock = tok_lock or threading.Lock()
        self.static = compile_decode  # static shapes; compiled when on CUDA
        self.compile_decode = compile_decode and model.device.type == "cuda"
        self._compiled: Any = None
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._cache_position = "cache_position" in params
        self._queue: queue.Queue[Request | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()
        self.preparing = 0  # callers that announced a request (begin()) and have not submitted it yet
        self.batches: list[int] = []  # rows of each decode step (for tests and benchmarks)

    # -- callers ---------------------------------------------------------------------------------

    def begin(self) -> None:
        """Announce a request being prepared (an idle worker waits for it up to ``max_wait``)."""
        with self._lock:
            self.preparing += 1

    def cancel(self) -> None:
        """Withdraw an announcement whose request will not come."""
        with self._lock:
            self.preparing -= 1

    def submit(self, req: Request) -> None:
        """Queue an announced request and wait for its result; raises its error."""
        with self._lock:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._loop, name=f"batcher:{self.name}", daemon=True)
                self._worker.start()
            self._queue.put(req)
            self.preparing -= 1
        req.done.wait()
        if req.error is not None:
            raise req.error

    def close(self) -> None:
        """Finish the running requests and stop the worker (the next request starts a new one)."""
        with self._lock:
            worker = self._worker
            if worker is not None and worker.is_alive():
                self._queue.put(None)
            self._worker = None
        if worker is not None:
            worker.join()

    # -- the worker ------------------------------------------------------------------------------

    def _loop(self) -> None:
        cache = self._new_cache()
        rows: list[Request] = []
        waiting: deque[Request] = deque()
        stopping = False
        while True:
            if not rows and not waiting:
                if stopping:
                    return
                first = self._queue.get()
                if first is None:
                    return
                waiting.append(first)
                stopping = self._gather(waiting)
            while True:  # everything that arrived by this step
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                else:
                    waiting.append(nxt)
            free = self.max_batch - len(rows)
            try:
                if waiting and free > 0:
                    self._admit(cache, rows, [waiting.popleft() for _ in range(min(free, len(waiting)))])
                if rows:
                    self._step(cache, rows)
            except Exception as e:  # noqa: BLE001 - the running requests fail; the worker carries on
                log.debug("batch failed", exc_info=True)
                self._fail(rows, ModelError(f"model {self.name}: generation failed: {type(e).__name__}: {e}"))
                rows.clear()
                cache.n = 0

    def _gather(self, waiting: deque[Request]) -> bool:
        """Wait out the batching window (longer while callers still prepare); True when told to stop."""
        start = time.monotonic()
        while len(waiting) < self.max_batch:
            now = time.monotonic()
            wait = start + self.batch_wait - now
            if wait <= 0:
                if self.preparing == 0 or now > start + self.max_wait:
                    return False
                wait = 0.002
            try:
                nxt = self._queue.get(timeout=wait)
            except queue.Empty:
                continue
            if nxt is None:
                return True
            waiting.append(nxt)
        return False

    def _new_cache(self) -> SlotCache:
        n_layers = self.model.config.num_hidden_layers
        if self.static:
            return SlotCache(n_layers, static=True, rows=self.max_batch, cols=self.context + 1)
        return SlotCache(n_layers, rows=min(8, self.max_batch))

    def _fail(self, reqs: list[Request], error: BaseException) -> None:
        for r in reqs:
            r.error = error
            r.done.set()

    def _admit(self, cache: SlotCache, rows: list[Request], group: list[Request]) -> None:
        """Prefill ``group`` and add it to the running rows; on CUDA OOM, try again in halves."""
        import torch

        try:
            logits = self._prefill(cache, rows, group)
        except torch.OutOfMemoryError:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if len(group) > 1:
                half = len(group) // 2
                self._admit(cache, rows, group[:half])
                self._admit(cache, rows, group[half:])
                return
            r = group[0]
            self._fail(group, ModelError(oom_message(self.name, f"generating {r.max_new_tokens} tokens after a "
                                                                f"{len(r.input_ids)}-token prompt")))
        except ModelError as e:
            self._fail(group, e)
        except Exception as e:  # noqa: BLE001 - every waiting caller gets the failure, never a hang
            log.debug("prefill failed", exc_info=True)
            self._fail(group, ModelError(f"model {self.name}: generation failed: {type(e).__name__}: {e}"))
        else:
            first = len(rows)
            rows.extend(group)
            self._take(cache, rows, logits, list(range(first, first + len(group))))

    def _prefill(self, cache: SlotCache, rows: list[Request], group: list[Request]) -> Any:
        """Run the prompts of ``group`` and copy their keys and values into ``cache``; returns the logits of
        their last positions."""
        import torch
        from transformers import DynamicCache
        from transformers.cache_utils import LinearAttentionCacheLayerMixin

        for r in group:
            if self.static and len(r.input_ids) + r.max_new_tokens > self.context:
                raise ModelError(f"model {self.name}: a {len(r.input_ids)}-token prompt and {r.max_new_tokens} "
                                 f"new tokens exceed the {self.context}-token context")
        with self.tok_lock:
            enc = self.tokenizer.pad({"input_ids": [r.input_ids for r in group]}, padding=True, return_tensors="pt")
        device = self.model.device
        ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        pre = DynamicCache()
        with torch.inference_mode():
            out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                             logits_to_keep=1, **{self._cache_kw: pre})
        logits = out.logits[:, -1, :].float()
        if cache.valid is None:
            first = pre.layers[0]
            if isinstance(first, LinearAttentionCacheLayerMixin):  # no per-token keys to lay slots out by
                raise ModelError(f"model {self.name}: continuous batching needs an attention KV cache; this model's "
                                 "first layer keeps a linear-attention state")
            cache.allocate(first.keys)
        shift = cache.make_room(len(group), ids.shape[1])
        for r in rows:
            r.start += shift
        cache.add(pre, mask)
        for r in group:
            r.pos = len(r.input_ids)
            r.start = cache.ptr - r.pos
            if r.grammar is not None:
                import xgrammar as xgr

                r.matcher = xgr.GrammarMatcher(r.grammar)
            if r.temperature:
                r.generator = torch.Generator(device=device)
                if r.seed is not None:
                    r.generator.manual_seed(r.seed)
                else:
                    r.generator.seed()
        return logits

    def _step(self, cache: SlotCache, rows: list[Request]) -> None:
        """One decode step for every running row."""
        import torch

        try:
            shift = cache.compact()
            if cache.ptr + 1 > cache.cols_cap:
                shift += cache.make_room(0, 0)
            for r in rows:
                r.start += shift
            logits = self._decode(cache, rows)
        except Exception as e:  # noqa: BLE001 - the running requests fail; the worker carries on
            if isinstance(e, torch.OutOfMemoryError):
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                err: BaseException = ModelError(oom_message(self.name, f"decoding {len(rows)} requests together"))
            elif isinstance(e, ModelError):
                err = e
            else:
                log.debug("decode step failed", exc_info=True)
                err = ModelError(f"model {self.name}: generation failed: {type(e).__name__}: {e}")
            self._fail(rows, err)
            rows.clear()
            cache.n = 0
            if cache.valid is not None:
                cache.valid.zero_()
            return
        for r in rows:
            r.pos += 1  # the token just fed was at pos; the one sampled now follows it
        self.batches.append(len(rows))
        if len(self.batches) > MAX_RECORDED_STEPS:
            del self.batches[: MAX_RECORDED_STEPS // 2]
        self._take(cache, rows, logits, list(range(len(rows))))

    def _decode(self, cache: SlotCache, rows: list[Request]) -> Any:
        import torch

        device = self.model.device
        n = len(rows)
        r_step = min(_pow2(n), cache.rows_cap) if cache.static else n
        ids = torch.full((r_step, 1), rows[0].last, dtype=torch.long)
        pos = torch.zeros((r_step, 1), dtype=torch.long)
        ids[:n, 0] = torch.tensor([r.last for r in rows])
        pos[:n, 0] = torch.tensor([r.pos for r in rows])
        cache.valid[:n, cache.ptr] = True
        window = cache.valid[:r_step, : cache.step_cols()] if cache.static else cache.valid[:n, cache.lo: cache.ptr + 1]
        dtype = self.model.dtype
        mask = torch.zeros(window.shape, dtype=dtype, device=device)
        mask.masked_fill_(~window, torch.finfo(dtype).min)
        mask = mask[:, None, None, :]
        cache.step_mask = mask
        cache.ptr_t.fill_(cache.ptr)
        kwargs: dict[str, Any] = {"input_ids": ids.to(device), "position_ids": pos.to(device),
                                  "attention_mask": mask, self._cache_kw: cache, "use_cache": True}
        if self._cache_position:
            kwargs["cache_position"] = cache.ptr_t
        with torch.inference_mode():
            try:
                out = self._forward()(**kwargs)
            except Exception as e:  # noqa: BLE001 - a step that cannot be compiled runs eagerly instead
                if not self.compile_decode or isinstance(e, torch.OutOfMemoryError):
                    raise
                log.warning("model %s: compiled decoding failed (%s: %s); decoding eagerly", self.name,
                            type(e).__name__, str(e)[:200])
                self.compile_decode = False
                out = self.model(**kwargs)
            logits = out.logits[:n, -1, :].float()
        cache.advance()
        return logits

    def _forward(self) -> Any:
        if not self.compile_decode:
            return self.model
        if self._compiled is None:
            import torch

            torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
            # one graph for every batch size (dynamic shapes); CUDA graphs are recorded per size
            self._compiled = torch.compile(self.model, mode="reduce-overhead", dynamic=True)
        return self._compiled

    def _take(self, cache: SlotCache, rows: list[Request], logits: Any, which: list[int]) -> None:
        """Sample the next token of rows ``which`` from their ``logits`` (one row each, in order); finish the
        requests that are done and drop them from the batch."""
        import torch

        constrained = [i for i, row in enumerate(which) if rows[row].matcher is not None]
        if constrained:
            import xgrammar as xgr

            bitmask = xgr.allocate_token_bitmask(len(which), logits.shape[-1])
            for i in constrained:
                rows[which[i]].matcher.fill_next_token_bitmask(bitmask, i)
            on_cpu = logits.device.type == "cpu"
            xgr.apply_token_bitmask_inplace(logits, bitmask if on_cpu else bitmask.to(logits.device),
                                            indices=constrained)
        chosen = logits.argmax(-1).tolist()
        for i, row in enumerate(which):
            r = rows[row]
            if r.temperature:
                scores = logits[i] / r.temperature
                probs = torch.softmax(scores, -1)
                if r.top_p is not None and r.top_p < 1.0:
                    sorted_p, order = probs.sort(descending=True)
                    drop = sorted_p.cumsum(-1) - sorted_p > r.top_p
                    sorted_p[drop] = 0
                    probs = torch.zeros_like(probs).scatter_(0, order, sorted_p)
                chosen[i] = int(torch.multinomial(probs, 1, generator=r.generator))
        finished: list[int] = []
        for i, row in enumerate(which):
            r, tok = rows[row], chosen[i]
            if r.matcher is not None and tok not in self.eos:
                r.matcher.accept_token(tok)
            if tok in self.eos:
                r.hit_eos = True
                finished.append(row)
                continue
            r.tokens.append(tok)
            r.last = tok
            if len(r.tokens) >= r.max_new_tokens or (r.stop and self._stopped(r)):
                finished.append(row)
        for row in sorted(finished, reverse=True):
            r = rows[row]
            rows[row] = rows[-1]
            rows.pop()
            cache.remove(row, [x.start for x in rows])
            r.done.set()

    def _stopped(self, r: Request) -> bool:
        with self.tok_lock:
            text = self.tokenizer.decode(r.tokens[-32:], skip_special_tokens=True)
        return any(s in text for s in r.stop)


def oom_message(name: str, doing: str) -> str:
    """The error text for CUDA running out of memory."""
    return (f"model {name}: CUDA out of memory {doing}; use a smaller max_batch or max_tokens, a smaller model, "
            f"or serve the model with vLLM/SGLang (vllm:<dir>, sglang:<dir>)")
