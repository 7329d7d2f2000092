"""Fit a bigram model with add-k smoothing and report validation perplexity."""

import json
import math
import os
from collections import Counter

from tqdm import tqdm


def sentences(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} not found")
    with open(path) as f:
        return [["<s>"] + line.split() + ["</s>"] for line in f if line.strip()]


def main():
    with open("config.json") as f:
        cfg = json.load(f)
    k = cfg["smoothing"]
    train = sentences(cfg["train"])
    unigrams, bigrams = Counter(), Counter()
    for s in tqdm(train, desc="counting", mininterval=1.0):
        unigrams.update(s[:-1])
        bigrams.update(zip(s[:-1], s[1:]))
    vocab = set(unigrams) | {"</s>"}
    nll, n = 0.0, 0
    for s in sentences(cfg["valid"]):
        for a, b in zip(s[:-1], s[1:]):
            p = (bigrams[(a, b)] + k) / (unigrams[a] + k * len(vocab)) if unigrams[a] or k else 0.0
            nll += -math.log(p) if p > 0 else math.inf
            n += 1
    ppl = math.exp(nll / n) if math.isfinite(nll) else math.inf
    print(f"perplexity: {ppl:.4f}")
    os.makedirs("out", exist_ok=True)
    with open("out/metrics.json", "w") as f:
        json.dump({"smoothing": k, "perplexity": round(ppl, 4) if math.isfinite(ppl) else None}, f)


if __name__ == "__main__":
    main()
