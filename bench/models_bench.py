"""Model backend benchmark on the embedded SmolLM2, each target against its baseline in the same run.

1. overhead: our transformers backend (``chat``, sequential) vs a bare ``model.generate`` loop on the same
   prompts and the same model object (target: <= 10% slower);
2. batching: 8 concurrent ``chat`` calls (dynamic batching) vs the same 8 calls one after another
   (target: >= 2.5x tokens/s);
3. constrained tool calls: schema-valid rate over N prompts (target: 100% of 200) and the cost per
   generated token of constrained vs unconstrained generation of the same prompts.

Usage: ``HF_HUB_OFFLINE=1 .venv/bin/python bench/models_bench.py [--prompts 200] [--repeats 3]``.
Runs on CUDA when available (bf16), else CPU; prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import jsonschema
import torch

from lab.models import Message, Sampling, ToolSpec, load_model

QUESTIONS = ["What is the capital of France?", "Name three primary colors.", "What is 7 times 8?",
             "Who wrote Hamlet?", "What does a thermometer measure?", "Give a synonym for happy.",
             "What is the boiling point of water?", "Why is the sky blue?"]
TOOLS = [
    ToolSpec("get_weather", "Get the current weather for a city.", {
        "type": "object", "properties": {"city": {"type": "string"},
                                         "unit": {"enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"]}),
    ToolSpec("add", "Add two numbers.", {
        "type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}, "required": ["a", "b"]}),
    ToolSpec("search", "Search the web.", {
        "type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]}),
]
SPECS = {t.name: t.parameters for t in TOOLS}
CITIES = ["Paris", "Tokyo", "Lima", "Oslo", "Cairo", "Delhi", "Quito", "Perth", "Rome", "Seoul"]
TOPICS = ["black holes", "the French revolution", "protein folding", "jazz history", "tax law"]


def tool_prompts(n: int) -> list[str]:
    """``n`` varied prompts asking for one of the three tools."""
    out = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            unit = "fahrenheit" if i % 2 else "celsius"
            out.append(f"What's the weather in {CITIES[i % len(CITIES)]} in {unit}?")
        elif kind == 1:
            out.append(f"Please add {i * 7 % 101} and {i * 13 % 97}.")
        else:
            out.append(f"Find recent articles about {TOPICS[i % len(TOPICS)]}.")
    return out


def concurrent(fn, items: list) -> list:
    """Run ``fn`` on every item in its own thread; return results in order."""
    results: list = [None] * len(items)

    def run(i: int) -> None:
        results[i] = fn(items[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(items))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompts", type=int, default=200, help="constrained tool-call prompts")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the timed comparisons (median kept)")
    ap.add_argument("--tokens", type=int, default=32, help="max new tokens of the free-text comparisons")
    args = ap.parse_args()

    t0 = time.perf_counter()
    model = load_model("smollm2")
    load_s = time.perf_counter() - t0
    hf, tok = model.model, model.tokenizer
    device = f"{model.device} ({torch.cuda.get_device_name(0)})" if model.device.type == "cuda" else "cpu"
    greedy = Sampling(max_tokens=args.tokens, temperature=0)
    msgs = [[Message("user", q)] for q in QUESTIONS]
    model.chat(msgs[0], sampling=greedy)  # warm-up

    # 1. overhead vs a bare generate loop (same prompts, same model, greedy), interleaved runs
    def bare() -> tuple[float, int]:
        start, n = time.perf_counter(), 0
        for q in QUESTIONS:
            ids = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True)
            with torch.inference_mode():
                out = hf.generate(**{k: v.to(model.device) for k, v in ids.items()}, max_new_tokens=args.tokens,
                                  do_sample=False, pad_token_id=tok.pad_token_id)
            new = out[0, ids["input_ids"].shape[1]:]
            tok.decode(new, skip_special_tokens=True)
            n += int((new != tok.pad_token_id).sum())
        return time.perf_counter() - start, n

    def ours_seq(items: list[list[Message]], sampling: Sampling) -> tuple[float, int]:
        start = time.perf_counter()
        rs = [model.chat(m, sampling=sampling) for m in items]
        return time.perf_counter() - start, sum(r.usage.output_tokens for r in rs)

    def ours_conc(items: list[list[Message]], sampling: Sampling) -> tuple[float, int]:
        start = time.perf_counter()
        rs = concurrent(lambda m: model.chat(m, sampling=sampling), items)
        return time.perf_counter() - start, sum(r.usage.output_tokens for r in rs)

    b_runs, o_runs, s_runs, c_runs = [], [], [], []
    for _ in range(args.repeats):
        b_runs.append(bare())
        o_runs.append(ours_seq(msgs, greedy))
        s_runs.append(ours_seq(msgs, greedy))
        c_runs.append(ours_conc(msgs, greedy))
    bare_s, bare_tok = statistics.median(r[0] for r in b_runs), b_runs[0][1]
    ours_s, ours_tok = statistics.median(r[0] for r in o_runs), o_runs[0][1]
    seq_s, seq_tok = statistics.median(r[0] for r in s_runs), s_runs[0][1]
    conc_s, conc_tok = statistics.median(r[0] for r in c_runs), c_runs[0][1]

    # 3. constrained tool calls: validity over N prompts (8 concurrent agents), and per-token cost
    prompts = tool_prompts(args.prompts)
    required = Sampling(max_tokens=160, temperature=0, tool_choice="required")  # whole strings (>= 64 chars)
    valid, tool_counts = 0, dict.fromkeys(SPECS, 0)
    start = time.perf_counter()
    gen_tokens = 0
    for i in range(0, len(prompts), 8):
        chunk = [[Message("user", p)] for p in prompts[i: i + 8]]
        for r in concurrent(lambda m: model.chat(m, tools=TOOLS, sampling=required), chunk):
            gen_tokens += r.usage.output_tokens
            calls = r.message.tool_calls
            if len(calls) == 1 and calls[0].name in SPECS:
                try:
                    jsonschema.validate(calls[0].arguments, SPECS[calls[0].name])
                except jsonschema.ValidationError:
                    continue
                valid += 1
                tool_counts[calls[0].name] += 1
    constrained_all_s = time.perf_counter() - start

    sample = [[Message("user", p)] for p in prompts[:8]]
    free = Sampling(max_tokens=args.tokens, temperature=0)
    cons = Sampling(max_tokens=max(args.tokens, 160), temperature=0, tool_choice="required")  # whole strings
    u_runs, k_runs = [], []
    for _ in range(args.repeats):
        # unconstrained: the same tool prompts (tool list in the system prompt), free text
        start = time.perf_counter()
        rs = concurrent(lambda m: model.chat(m, sampling=free), [
            [Message("system", model_instructions())] + m for m in sample])
        u_runs.append((time.perf_counter() - start) / max(1, sum(r.usage.output_tokens for r in rs)))
        start = time.perf_counter()
        rs = concurrent(lambda m: model.chat(m, tools=TOOLS, sampling=cons), sample)
        k_runs.append((time.perf_counter() - start) / max(1, sum(r.usage.output_tokens for r in rs)))
    u_tok, k_tok = statistics.median(u_runs), statistics.median(k_runs)

    print(f"device: {device}; torch threads {torch.get_num_threads()}; model load {load_s:.1f} s; "
          f"{args.repeats} repeats (median)\n")
    print("| measure | ours | baseline | ratio | target |")
    print("|---|---|---|---|---|")
    print(f"| overhead: {len(QUESTIONS)} prompts sequential, greedy, {args.tokens} new tokens (s) | {ours_s:.2f} "
          f"({ours_tok} tok) | bare generate {bare_s:.2f} ({bare_tok} tok) | {ours_s / bare_s:.3f}x time "
          f"| <= 1.10x |")
    print(f"| batching: 8 concurrent vs sequential (tokens/s) | {conc_tok / conc_s:.1f} | {seq_tok / seq_s:.1f} "
          f"| {(conc_tok / conc_s) / (seq_tok / seq_s):.2f}x | >= 2.5x |")
    print(f"| constrained tool calls: schema-valid ({args.prompts} prompts, 8 concurrent) | "
          f"{valid}/{args.prompts} = {100 * valid / args.prompts:.1f}% | - | - | 100% |")
    print(f"| constrained vs unconstrained cost per token (ms, 8 concurrent) | {1000 * k_tok:.1f} | "
          f"{1000 * u_tok:.1f} | {k_tok / u_tok:.3f}x | report |")
    print(f"\ntool calls by tool: {tool_counts}; constrained run: {gen_tokens} tokens in {constrained_all_s:.1f} s "
          f"({gen_tokens / constrained_all_s:.1f} tokens/s); rows per decode step: "
          f"max {max(model.batches)}, mean {statistics.mean(model.batches):.1f}")


def model_instructions() -> str:
    """The tool-list system prompt the constrained path also gets, for a like-for-like unconstrained run."""
    from lab.models.constrained import instructions

    return instructions(TOOLS, "required", None)


if __name__ == "__main__":
    main()
