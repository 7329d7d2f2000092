"""Most-frequent-tag baseline tagger."""

import json
import os
from collections import Counter, Iterable, defaultdict


def read(path):
    with open(path) as f:
        return [[tuple(tok.rsplit("/", 1)) for tok in line.split()] for line in f if line.strip()]


def flatten(items):
    for x in items:
        if isinstance(x, Iterable) and not isinstance(x, (str, tuple)):
            yield from flatten(x)
        else:
            yield x


def main():
    train, test = read("data/train.txt"), read("data/test.txt")
    counts = defaultdict(Counter)
    for word, tag in flatten(train):
        counts[word][tag] += 1
    default = Counter(tag for _, tag in flatten(train)).most_common(1)[0][0]
    best = {w: c.most_common(1)[0][0] for w, c in counts.items()}
    gold = list(flatten(test))
    hits = sum(best.get(w, default) == t for w, t in gold)
    tags = sorted({t for _, t in flatten(train)})
    print(f"tags: {len(tags)} ({' '.join(tags)})")
    print(f"accuracy: {hits / len(gold):.4f} on {len(gold)} tokens")
    os.makedirs("out", exist_ok=True)
    with open("out/eval.json", "w") as f:
        json.dump({"num_tags": len(tags), "accuracy": round(hits / len(gold), 4)}, f)


if __name__ == "__main__":
    main()
