"""Continuous batching on the real embedded SmolLM2 (CPU), and the batch-size defaults."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest

from lab.models import Message, Sampling, ToolSpec
from lab.models.batching import CPU_MAX_BATCH, MAX_BATCH_CAP, context_tokens, default_max_batch, kv_bytes_per_token
from lab.models.continuous import ContinuousBatcher, Request, SlotCache
from lab.models.embedded import smollm2_dir

LONG = [Message("user", "Count from 1 to 100, separated by commas.")]
ADD = ToolSpec("add", "Add two numbers.", {
    "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]})


def test_a_short_request_joins_a_long_one_and_finishes_first(smollm2):
    """A request submitted while a long reply decodes joins the running batch and returns while the long
    reply is still decoding; both replies are what each gives alone (greedy)."""
    short = [Message("user", "What is the capital of France?")]
    alone_short = smollm2.chat(short, sampling=Sampling(max_tokens=8, temperature=0))
    long_done = threading.Event()
    results: dict[str, object] = {}
    steps_before = len(smollm2.batches)

    def ask_long() -> None:
        results["long"] = smollm2.chat(LONG, sampling=Sampling(max_tokens=80, temperature=0))
        long_done.set()

    t = threading.Thread(target=ask_long)
    t.start()
    while len(smollm2.batches) < steps_before + 10:  # the long reply is decoding
        assert t.is_alive()
        long_done.wait(0.05)
    results["short"] = smollm2.chat(short, sampling=Sampling(max_tokens=8, temperature=0))
    long_running_when_short_returned = not long_done.is_set()
    steps_at_short = len(smollm2.batches)
    t.join()
    assert long_running_when_short_returned
    assert results["long"].usage.output_tokens == 80  # ran to its budget: it was long
    assert len(smollm2.batches) - steps_at_short > 30  # the long reply went on well after the short one
    assert 2 in smollm2.batches[steps_before:]  # the two were decoded together
    assert results["short"].message.content == alone_short.message.content
    assert results["long"].message.content.startswith("1, 2, 3")


def test_constrained_and_free_requests_share_steps_with_their_own_settings(smollm2):
    """A tool call (its own grammar matcher), a sampled reply with a seed and a greedy reply decode together;
    the sampled reply is the same as when it runs alone."""
    sampled = Sampling(max_tokens=16, temperature=0.8, seed=7)
    alone = smollm2.chat([Message("user", "Tell me a fun fact.")], sampling=sampled).message.content
    out: dict[str, object] = {}
    before = len(smollm2.batches)
    jobs = {
        "tool": lambda: smollm2.chat([Message("user", "Add 2 and 3.")], tools=[ADD],
                                     sampling=Sampling(tool_choice="required", max_tokens=40)),
        "sampled": lambda: smollm2.chat([Message("user", "Tell me a fun fact.")], sampling=sampled),
        "greedy": lambda: smollm2.chat(LONG, sampling=Sampling(max_tokens=24, temperature=0)),
    }
    threads = [threading.Thread(target=lambda k=k, f=f: out.__setitem__(k, f())) for k, f in jobs.items()]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert max(smollm2.batches[before:]) == 3
    call = out["tool"].message.tool_calls[0]
    assert call.name == "add"
    jsonschema.validate(call.arguments, ADD.parameters)
    assert out["sampled"].message.content == alone
    assert out["greedy"].message.content.startswith("1, 2, 3")


def test_static_shape_decoding_gives_the_same_tokens(smollm2, monkeypatch):
    """The fixed-shape path CUDA graphs use (rows padded to a power of two, columns in buckets, the running rows
    moved back to column 0 when the cache fills up), run eagerly on CPU, gives the same greedy tokens as the
    default path for requests that join at different steps."""
    monkeypatch.setattr(SlotCache, "MIN_COLS", 8)  # small buckets, so a short run crosses several
    static = ContinuousBatcher(smollm2.model, smollm2.tokenizer, eos=smollm2._eos, name="static", max_batch=4,
                               compile_decode=True, context=96)
    assert static.static and not static.compile_decode  # compiled only on CUDA
    prompts = [smollm2.prompt_ids([Message("user", q)]) for q in
               ("Who wrote Hamlet?", "Name three primary colors.", "Count from 1 to 10.")]
    reqs = [Request(p, 20) for p in prompts]
    started = threading.Event()

    def run(r: Request) -> None:
        static.begin()
        started.set()
        static.submit(r)

    threads = []
    for r in reqs:
        threads.append(threading.Thread(target=run, args=(r,)))
        threads[-1].start()
        started.wait()
        while len(static.batches) < 3 * len(threads):  # the next one joins a running batch
            threads[0].join(0.02)
            if not threads[0].is_alive():
                break
    for th in threads:
        th.join()
    static.close()
    assert max(static.batches) > 1
    for p, r in zip(prompts, reqs, strict=True):
        expect = Request(p, 20)
        smollm2.batcher.begin()
        smollm2.batcher.submit(expect)
        assert r.tokens == expect.tokens


def test_static_cache_rejects_a_request_longer_than_the_context(smollm2):
    small = ContinuousBatcher(smollm2.model, smollm2.tokenizer, eos=smollm2._eos, name="small", max_batch=2,
                              compile_decode=True, context=32)
    small.begin()
    with pytest.raises(Exception, match="exceed the 32-token context"):
        small.submit(Request(list(range(20)), 20))
    small.close()


def test_default_max_batch_follows_free_memory_and_kv_cost():
    assert default_max_batch(cuda=False) == CPU_MAX_BATCH
    gib = 2**30
    # 100 GiB free, 100 KiB per token, 4096 tokens per request: 0.8 * 100 GiB / 400 MiB = 204
    assert default_max_batch(cuda=True, free_bytes=100 * gib, kv_bytes_per_token=100 * 1024,
                             tokens_per_request=4096) == 204
    assert default_max_batch(cuda=True, free_bytes=gib // 10, kv_bytes_per_token=100 * 1024,
                             tokens_per_request=4096) == 1  # never below one
    assert default_max_batch(cuda=True, free_bytes=1000 * gib, kv_bytes_per_token=1024,
                             tokens_per_request=4096) == MAX_BATCH_CAP
    config = SimpleNamespace(**json.loads((Path(smollm2_dir()) / "config.json").read_text()))
    assert kv_bytes_per_token(config, 2) == 2 * 30 * 3 * 64 * 2  # SmolLM2-135M: 30 layers, 3 KV heads of 64
    assert context_tokens(config) == 4096 and context_tokens(SimpleNamespace(max_position_embeddings=2048)) == 2048
    llama3b = SimpleNamespace(num_hidden_layers=28, num_attention_heads=24, num_key_value_heads=8, hidden_size=3072,
                              head_dim=128, max_position_embeddings=131072)
    assert kv_bytes_per_token(llama3b, 2) == 114_688
    # an H200 with the 3B model loaded: ~132 GB free -> 0.8 * 132e9 / (114,688 * 4096) = 224
    assert default_max_batch(cuda=True, free_bytes=132 * 10**9, kv_bytes_per_token=114_688,
                             tokens_per_request=context_tokens(llama3b)) == 224


def test_a_failure_while_sampling_fails_the_running_requests_and_the_worker_goes_on(smollm2, monkeypatch):
    def broken(req):
        raise RuntimeError("tokenizer exploded")

    monkeypatch.setattr(smollm2.batcher, "_stopped", broken)
    with pytest.raises(Exception, match="generation failed: RuntimeError: tokenizer exploded"):
        smollm2.chat([Message("user", "hi")], sampling=Sampling(max_tokens=4, stop=["zzz"]))
    monkeypatch.undo()
    r = smollm2.chat([Message("user", "What is the capital of France?")], sampling=Sampling(max_tokens=6))
    assert r.usage.output_tokens > 0 and smollm2.batcher.preparing == 0
