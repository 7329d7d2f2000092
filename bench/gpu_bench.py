"""GPU benchmark of local models: the lab's continuous batching against the lab's old batching, bare
transformers ``generate`` (static batch, eager and compiled), transformers' own continuous batching
(``generate_batch``) and the HBM roofline, in one run on random-weight models (nothing is downloaded).

Measures, per model shape (SmolLM2-135M and a Llama-shape 3B on a GPU; a tiny shape with ``--small``):
1 agent and N concurrent agents asking for T new tokens (tokens/s), N constrained tool calls (schema-valid
count), and on the SmolLM2 shape (the embedded model itself with ``--cpu``) a staggered-arrival case: agents
ask at random times within 3 s for replies of 16/64/256 tokens (mean and p95 latency, 16-token mean).

Usage:
  GPU:  python bench/gpu_bench.py --out DIR              (one H200: about 6 minutes; bench/gpu_run.sh)
  CPU:  HF_HUB_OFFLINE=1 python bench/gpu_bench.py --cpu --small --out DIR   (about 2 minutes)

Writes ``DIR/gpu_bench.json`` and ``DIR/gpu_bench.md`` (the markdown is also printed). The tokenizer and the
SmolLM2 config come from ``--assets`` (default: the embedded model's converted cache).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import queue
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lab.models import Message, Sampling, ToolSpec  # noqa: E402
from lab.models.batching import context_tokens, kv_bytes_per_token  # noqa: E402
from lab.models.transformers_backend import TransformersModel  # noqa: E402

LLAMA_3B = dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28, num_attention_heads=24,
                num_key_value_heads=8, head_dim=128, max_position_embeddings=131072, tie_word_embeddings=True)
TINY = dict(hidden_size=128, intermediate_size=384, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
            head_dim=32)
TOOLS = [
    ToolSpec("get_weather", "Get the current weather for a city.", {
        "type": "object", "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"]}),
    ToolSpec("add", "Add two numbers.", {
        "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}),
]
SPECS = {t.name: t.parameters for t in TOOLS}
COUNT = "Count from 1 to 500, separated by commas."


# -- models ------------------------------------------------------------------------------------------

def build(shape: str, assets: Path, device: str) -> tuple[Any, Any]:
    """A random-weight causal LM of ``shape`` on ``device`` (bf16 on CUDA) and the embedded tokenizer."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    config = AutoConfig.from_pretrained(assets)
    for k, v in {"smollm2-135m": {}, "llama-3b": LLAMA_3B, "tiny": TINY}[shape].items():
        setattr(config, k, v)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    torch.manual_seed(0)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.generation_config = GenerationConfig.from_pretrained(assets)
    return model.eval(), AutoTokenizer.from_pretrained(assets)


def weight_bytes(model: Any) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def bandwidth(device: str) -> float:
    """Measured memory copy rate in bytes/s (read + write)."""
    n = 2**30 if device == "cuda" else 2**26
    x = torch.empty(n, dtype=torch.uint8, device=device)
    y = torch.empty_like(x)
    y.copy_(x)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(5):
        y.copy_(x)
    sync(device)
    return 2 * 5 * n / (time.perf_counter() - t0)


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def roofline(wbytes: int, kv_token: int, batch: int, context: int, bw: float) -> float:
    """Tokens/s if each decode step only had to read the weights and the batch's KV cache once."""
    return batch * bw / (wbytes + batch * context * kv_token)


# -- the lab's batching before continuous batching (the baseline "today") ----------------------------

class GroupBatcher:
    """The lab's old batching: requests arriving within a window are padded into one ``generate`` call that
    runs until its longest reply is done; requests arriving meanwhile wait for the next call."""

    def __init__(self, model: Any, tokenizer: Any, max_batch: int, window: float = 0.01) -> None:
        self.model, self.tok, self.max_batch, self.window = model, tokenizer, max_batch, window
        self.q: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def ask(self, ids: list[int], max_new: int) -> int:
        done, box = threading.Event(), {}
        self.q.put((ids, max_new, done, box))
        done.wait()
        return box["n"]

    def close(self) -> None:
        self.q.put(None)
        self.thread.join()

    def _loop(self) -> None:
        while True:
            first = self.q.get()
            if first is None:
                return
            batch, start = [first], time.monotonic()
            while len(batch) < self.max_batch:
                wait = start + self.window - time.monotonic()
                if wait <= 0:
                    break
                try:
                    nxt = self.q.get(timeout=wait)
                except queue.Empty:
                    break
                if nxt is None:
                    self.q.put(None)
                    break
                batch.append(nxt)
            counts = bare_generate(self.model, self.tok, [b[0] for b in batch], max(b[1] for b in batch))
            for (_, max_new, done, box), n in zip(batch, counts, strict=True):
                box["n"] = min(n, max_new)
                done.set()


def bare_generate(model: Any, tok: Any, prompts: list[list[int]], max_new: int, static: bool = False) -> list[int]:
    """One static-batch ``generate`` (greedy); new tokens per row up to end-of-sequence."""
    enc = tok.pad({"input_ids": prompts}, padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"].to(model.device), enc["attention_mask"].to(model.device)
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    kwargs = {"cache_implementation": "static"} if static else {}
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new, do_sample=False,
                             temperature=None, top_p=None, top_k=None, pad_token_id=tok.pad_token_id, **kwargs)
    counts = []
    for row in out[:, ids.shape[1]:].tolist():
        cut = next((i for i, t in enumerate(row) if t in eos), None)
        counts.append(len(row) if cut is None else cut)
    return counts


def hf_generate_batch(model: Any, prompts: list[list[int]], max_new: int) -> int:
    """Run transformers' continuous batching (``generate_batch``, default configuration); new tokens in all."""
    from transformers import GenerationConfig

    eos = model.generation_config.eos_token_id
    cfg = GenerationConfig(max_new_tokens=max_new, do_sample=False, eos_token_id=eos,
                           pad_token_id=model.generation_config.pad_token_id or eos)
    with torch.inference_mode():
        out = model.generate_batch(inputs=prompts, generation_config=cfg)
    return sum(len(o.generated_tokens) for o in out.values())


# -- workloads -----------------------------------------------------------------------------------------

def concurrently(fn: Any, items: list) -> list:
    results: list = [None] * len(items)

    def run(i: int) -> None:
        results[i] = fn(items[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(items))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def agent_messages(n: int) -> list[list[Message]]:
    return [[Message("user", f"Agent {i}: write a detailed report on topic number {i}.")] for i in range(n)]


def timed(fn: Any, device: str) -> tuple[float, Any]:
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def lab_tokens_per_s(tm: TransformersModel, n: int, tokens: int, device: str) -> dict[str, float]:
    greedy = Sampling(max_tokens=tokens, temperature=0)
    msgs = agent_messages(n)
    s, rs = timed(lambda: concurrently(lambda m: tm.chat(m, sampling=greedy), msgs), device)
    total = sum(r.usage.output_tokens for r in rs)
    return {"tok_s": total / s, "tokens": total, "seconds": s}


def group_tokens_per_s(tm: TransformersModel, max_batch: int, n: int, tokens: int, device: str) -> dict[str, float]:
    gb = GroupBatcher(tm.model, tm.tokenizer, max_batch)
    prompts = [tm.prompt_ids(m) for m in agent_messages(n)]
    try:
        s, counts = timed(lambda: concurrently(lambda p: gb.ask(p, tokens), prompts), device)
    finally:
        gb.close()
    return {"tok_s": sum(counts) / s, "tokens": sum(counts), "seconds": s}


def bare_tokens_per_s(tm: TransformersModel, n: int, tokens: int, device: str, static: bool = False
                      ) -> dict[str, float]:
    prompts = [tm.prompt_ids(m) for m in agent_messages(n)]
    s, counts = timed(lambda: bare_generate(tm.model, tm.tokenizer, prompts, tokens, static), device)
    return {"tok_s": sum(counts) / s, "tokens": sum(counts), "seconds": s}


def hf_batch_tokens_per_s(tm: TransformersModel, n: int, tokens: int, device: str) -> dict[str, float]:
    prompts = [tm.prompt_ids(m) for m in agent_messages(n)]
    s, total = timed(lambda: hf_generate_batch(tm.model, prompts, tokens), device)
    return {"tok_s": total / s, "tokens": total, "seconds": s}


def tool_calls(tm: TransformersModel, n: int) -> dict[str, float]:
    cities = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo"]
    msgs = [[Message("user", f"What's the weather in {cities[i % 5]}?" if i % 2 else f"Add {i} and {2 * i}.")]
            for i in range(n)]
    required = Sampling(max_tokens=160, temperature=0, tool_choice="required")  # whole strings (>= 64 chars)
    t0 = time.perf_counter()
    rs = concurrently(lambda m: tm.chat(m, tools=TOOLS, sampling=required), msgs)
    valid = 0
    for r in rs:
        calls = r.message.tool_calls
        if len(calls) == 1 and calls[0].name in SPECS:
            try:
                jsonschema.validate(calls[0].arguments, SPECS[calls[0].name])
                valid += 1
            except jsonschema.ValidationError:
                pass
    return {"valid": valid, "n": n, "seconds": time.perf_counter() - t0}


def staggered(ask: Any, n: int, lengths: tuple[int, ...], spread: float = 3.0, seed: int = 0) -> dict[str, Any]:
    """``n`` agents arriving at random times within ``spread`` s, reply lengths cycling through ``lengths``;
    ``ask(max_tokens)`` makes one request. Latency = reply time - arrival time."""
    rng = random.Random(seed)
    arrivals = sorted(rng.uniform(0, spread) for _ in range(n))
    plan = [(arrivals[i], lengths[i % len(lengths)]) for i in range(n)]
    rng.shuffle(plan)
    t0 = time.perf_counter()

    def one(item: tuple[float, int]) -> tuple[int, float]:
        at, length = item
        time.sleep(max(0.0, t0 + at - time.perf_counter()))
        start = time.perf_counter()
        ask(length)
        return length, time.perf_counter() - start

    res = concurrently(one, plan)
    lat = sorted(x for _, x in res)
    by_len = {str(k): statistics.mean(x for length, x in res if length == k) for k in lengths}
    return {"mean": statistics.mean(lat), "p95": lat[min(len(lat) - 1, math.ceil(0.95 * len(lat)) - 1)],
            "mean_by_length": by_len, "wall": time.perf_counter() - t0}


def stagger_lab(tm: TransformersModel, n: int, lengths: tuple[int, ...]) -> dict[str, Any]:
    return staggered(lambda k: tm.chat([Message("user", COUNT)], sampling=Sampling(max_tokens=k, temperature=0)),
                     n, lengths)


def roofline_row(wbytes: int, kv_token: int, batch: int, context: int, bw: float) -> dict[str, float]:
    """The roofline bound as a measure's row."""
    return {"tok_s": roofline(wbytes, kv_token, batch, context, bw)}


def compile_warmup(compiled: TransformersModel, agents: int, device: str) -> dict[str, Any]:
    """Compile the decode step, then record the CUDA graphs of batch sizes 1, 2 and ``agents``."""
    t = time.perf_counter()
    for n in (1, 2, agents):
        lab_tokens_per_s(compiled, n, 8, device)
    return {"seconds": time.perf_counter() - t}


def bare_static_compiled_1(tm: TransformersModel, tokens: int, device: str) -> dict[str, float]:
    """One agent through transformers' static cache and compiled ``generate`` (the first call compiles)."""
    bare_tokens_per_s(tm, 1, 8, device, static=True)
    return bare_tokens_per_s(tm, 1, tokens, device, static=True)


def stagger_old(tm: TransformersModel, max_batch: int, n: int, lengths: tuple[int, ...]) -> dict[str, Any]:
    gb = GroupBatcher(tm.model, tm.tokenizer, max_batch)
    prompt = tm.prompt_ids([Message("user", COUNT)])
    try:
        return staggered(lambda k: gb.ask(prompt, k), n, lengths)
    finally:
        gb.close()


# -- the run -------------------------------------------------------------------------------------------

class Run:
    """Results, written after every measure so a run cut short still leaves what it measured."""

    def __init__(self, out: Path, budget: float, meta: dict[str, Any]) -> None:
        self.out, self.deadline = out, time.monotonic() + budget
        self.data: dict[str, Any] = {"meta": meta, "shapes": {}}
        out.mkdir(parents=True, exist_ok=True)

    def measure(self, shape: str, key: str, fn: Callable[..., Any], *args: Any, need: float = 0.0) -> Any:
        """Record ``fn(*args)`` (or why it was skipped or failed) under ``shape``/``key`` and save the JSON."""
        left = self.deadline - time.monotonic()
        if left < need:
            result: Any = {"skipped": f"time budget ({left:.0f} s left, needs ~{need:.0f} s)"}
        else:
            t0 = time.perf_counter()
            try:
                result = fn(*args)
            except Exception as e:  # noqa: BLE001 - one failed measure is recorded, the run goes on
                result = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
            print(f"  {shape} {key}: {json.dumps(result)[:200]} ({time.perf_counter() - t0:.1f} s)", flush=True)
        self.data["shapes"].setdefault(shape, {})[key] = result
        (self.out / "gpu_bench.json").write_text(json.dumps(self.data, indent=1))
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", action="store_true", help="run on CPU (the staggered case on the embedded model)")
    ap.add_argument("--small", action="store_true", help="tiny shapes and few agents (a test of the script)")
    ap.add_argument("--out", type=Path, default=Path("gpu_bench_out"), help="folder for the JSON and markdown")
    ap.add_argument("--assets", type=Path, default=None,
                    help="folder with the SmolLM2 config.json and tokenizer (default: the embedded model's cache)")
    ap.add_argument("--agents", type=int, default=None, help="concurrent agents (default 64; 8 with --small)")
    ap.add_argument("--tokens", type=int, default=None, help="new tokens per agent (default 128; 32 with --small)")
    ap.add_argument("--budget", type=float, default=330.0, help="seconds; later measures are skipped past it")
    args = ap.parse_args()

    device = "cpu" if args.cpu or not torch.cuda.is_available() else "cuda"
    if args.assets is None:
        from lab.models.embedded import smollm2_dir

        args.assets = smollm2_dir()
    agents = args.agents or (8 if args.small else 64)
    tokens = args.tokens or (32 if args.small else 128)
    shapes = ["tiny"] if args.small else ["smollm2-135m", "llama-3b"]
    lengths = (16, 32, 64) if args.small else (16, 64, 256)
    stagger_agents = 6 if args.small else 64
    import transformers

    meta = {"device": torch.cuda.get_device_name(0) if device == "cuda" else f"cpu ({platform.processor()})",
            "torch": torch.__version__, "transformers": transformers.__version__, "python": platform.python_version(),
            "agents": agents, "tokens": tokens, "staggered": {"agents": stagger_agents, "lengths": lengths,
                                                              "spread_s": 3.0}, "small": args.small}
    run = Run(args.out, args.budget, meta)
    bw = bandwidth(device)
    meta["bandwidth_GBps"] = bw / 1e9
    print(f"device {meta['device']}; torch {torch.__version__}; transformers {transformers.__version__}; "
          f"copy rate {bw / 1e9:.0f} GB/s", flush=True)

    models: dict[str, TransformersModel] = {}
    for shape in shapes:  # A: every shape, eager (the lab's default settings and the baselines)
        t0 = time.perf_counter()
        hf, tok = build(shape, args.assets, device)
        wb, kv = weight_bytes(hf), kv_bytes_per_token(hf.config, hf.dtype.itemsize)
        lab = models[shape] = TransformersModel.from_model(hf, tok, name=shape)
        info = {"build_s": time.perf_counter() - t0, "weight_GB": wb / 1e9, "kv_bytes_per_token": kv,
                "max_batch_chosen": lab.max_batch, "context_tokens": context_tokens(hf.config)}
        run.data["shapes"].setdefault(shape, {})["info"] = info
        print(f"{shape}: {info}", flush=True)
        ctx = 40 + tokens // 2
        run.measure(shape, "roofline_1", roofline_row, wb, kv, 1, ctx, bw)
        run.measure(shape, f"roofline_{agents}", roofline_row, wb, kv, agents, ctx, bw)
        lab_tokens_per_s(lab, agents, 8, device)  # warm-up
        bare_tokens_per_s(lab, agents, 8, device)
        run.measure(shape, "lab_1", lab_tokens_per_s, lab, 1, tokens, device)
        run.measure(shape, "bare_1", bare_tokens_per_s, lab, 1, tokens, device)
        run.measure(shape, f"lab_{agents}", lab_tokens_per_s, lab, agents, tokens, device)
        run.measure(shape, f"bare_{agents}", bare_tokens_per_s, lab, agents, tokens, device)
        run.measure(shape, f"tool_calls_{agents}", tool_calls, lab, agents, need=20)
        if shape in ("smollm2-135m", "tiny"):
            target, label = lab, shape
            if device == "cpu":
                from lab.models import load_model

                target, label = load_model("smollm2"), "embedded smollm2"
            run.data["shapes"][shape]["staggered_model"] = label
            old_batch = 64 if device == "cuda" else 8
            run.measure(shape, "staggered_lab", stagger_lab, target, stagger_agents, lengths, need=20)
            run.measure(shape, f"staggered_old_lab_{old_batch}", stagger_old, target, old_batch, stagger_agents,
                        lengths, need=60)
        if device == "cuda":
            run.measure(shape, f"hf_generate_batch_{agents}", hf_batch_tokens_per_s, lab, agents, tokens, device,
                        need=30)
        else:
            run.data["shapes"][shape][f"hf_generate_batch_{agents}"] = {
                "skipped": "CPU (about 5 tokens/s here; measured on the GPU)"}
        run.measure(shape, f"old_lab_8_{agents}", group_tokens_per_s, lab, 8, agents, tokens, device, need=40)

    if device == "cuda":
        for shape, lab in models.items():  # B: compiled decode (CUDA graphs), and transformers' compiled generate
            compiled = TransformersModel.from_model(lab.model, lab.tokenizer, name=f"{shape} compiled",
                                                    compile_decode=True)
            if "seconds" in run.measure(shape, "compile_warmup", compile_warmup, compiled, agents, device, need=90):
                run.measure(shape, "lab_compiled_1", lab_tokens_per_s, compiled, 1, tokens, device, need=15)
                run.measure(shape, f"lab_compiled_{agents}", lab_tokens_per_s, compiled, agents, tokens, device,
                            need=15)
                if shape == "smollm2-135m":
                    run.measure(shape, "staggered_lab_compiled", stagger_lab, compiled, stagger_agents, lengths,
                                need=20)
            compiled.close()
            run.measure(shape, "bare_static_compiled_1", bare_static_compiled_1, lab, tokens, device, need=60)
        if "smollm2-135m" in models:  # C: the old default batching under staggered arrivals (slowest)
            run.measure("smollm2-135m", "staggered_old_lab_8", stagger_old, models["smollm2-135m"], 8, stagger_agents,
                        lengths, need=90)
    for lab in models.values():
        lab.close()

    md = markdown(run.data)
    (args.out / "gpu_bench.md").write_text(md)
    print("\n" + md)


def markdown(data: dict[str, Any]) -> str:
    """The results as markdown tables (tokens/s, ratios to the baselines of the same run)."""
    m = data["meta"]
    n = m["agents"]
    lines = [f"Device: {m['device']}; torch {m['torch']}; transformers {m['transformers']}; copy rate "
             f"{m['bandwidth_GBps']:.0f} GB/s; {n} agents x {m['tokens']} new tokens; greedy; random weights.", ""]

    def tok(r: Any) -> str:
        if not isinstance(r, dict):
            return "-"
        if "tok_s" in r:
            return f"{r['tok_s']:,.0f}"
        return "skipped" if "skipped" in r else ("error" if "error" in r else "-")

    def ratio(a: Any, b: Any) -> str:
        try:
            return f"{a['tok_s'] / b['tok_s']:.2f}x"
        except (KeyError, TypeError, ZeroDivisionError):
            return "-"

    lines += ["| shape | agents | lab | lab compiled | bare `generate` | bare static+compiled | HF `generate_batch` "
              "| old lab (max_batch=8) | roofline | lab / bare | lab / old |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for shape, s in data["shapes"].items():
        info = s.get("info", {})
        for a in (1, n):
            lab = s.get(f"lab_{a}")
            lines.append(f"| {shape} ({info.get('weight_GB', 0):.2f} GB, max_batch {info.get('max_batch_chosen')}) "
                         f"| {a} | {tok(lab)} | {tok(s.get(f'lab_compiled_{a}'))} | {tok(s.get(f'bare_{a}'))} | "
                         f"{tok(s.get(f'bare_static_compiled_{a}'))} | {tok(s.get(f'hf_generate_batch_{a}'))} | "
                         f"{tok(s.get(f'old_lab_8_{a}'))} | {tok(s.get(f'roofline_{a}'))} | "
                         f"{ratio(lab, s.get(f'bare_{a}'))} | {ratio(lab, s.get(f'old_lab_8_{a}'))} |")
    lines += ["", "| shape | constrained tool calls schema-valid |", "|---|---:|"]
    for shape, s in data["shapes"].items():
        r = s.get(f"tool_calls_{n}", {})
        lines.append(f"| {shape} | {r.get('valid', '-')}/{r.get('n', n)} |")
    st = m["staggered"]
    lines += ["", f"Staggered arrivals: {st['agents']} agents within {st['spread_s']:.0f} s, replies of "
              f"{'/'.join(map(str, st['lengths']))} tokens (latency in s).", "",
              "| shape (model) | batching | mean | p95 | mean of 16-token replies |", "|---|---|---:|---:|---:|"]
    for shape, s in data["shapes"].items():
        for key, label in (("staggered_lab", "lab (continuous)"), ("staggered_lab_compiled", "lab compiled"),
                           ("staggered_old_lab_64", "old lab, max_batch=64"),
                           ("staggered_old_lab_8", "old lab, max_batch=8")):
            r = s.get(key)
            if isinstance(r, dict) and "mean" in r:
                lines.append(f"| {shape} ({s.get('staggered_model')}) | {label} | {r['mean']:.2f} | {r['p95']:.2f} | "
                             f"{r['mean_by_length']['16']:.2f} |")
            elif r is not None:
                lines.append(f"| {shape} | {label} | {json.dumps(r)[:80]} | | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
