"""Train and evaluate a multinomial naive Bayes classifier."""

import argparse
import json
import math
import os
from collections import Counter, defaultdict

from tabulate import tabulate


def read(path):
    with open(path) as f:
        return [line.rstrip("\n").split("\t", 1) for line in f if line.strip()]


def train(rows, alpha):
    prior, counts, vocab = Counter(), defaultdict(Counter), set()
    for label, text in rows:
        prior[label] += 1
        for w in text.split():
            counts[label][w] += 1
            vocab.add(w)
    return prior, counts, vocab, alpha


def predict(model, text):
    prior, counts, vocab, alpha = model
    total = sum(prior.values())
    best, best_lp = None, -math.inf
    for label in sorted(prior):
        denom = sum(counts[label].values()) + alpha * len(vocab)
        lp = math.log(prior[label] / total)
        lp += sum(math.log((counts[label][w] + alpha) / denom) for w in text.split() if w in vocab)
        if lp > best_lp:
            best, best_lp = label, lp
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--alpha", type=float, default=1.0, help="additive smoothing")
    args = ap.parse_args()
    model = train(read("data/train.tsv"), args.alpha)
    test = read("data/test.tsv")
    preds = [predict(model, text) for _, text in test]
    rows = []
    for label in sorted(model[0]):
        tp = sum(p == label == g for p, (g, _) in zip(preds, test))
        n_pred = sum(p == label for p in preds)
        rows.append([label, tp, n_pred, round(tp / n_pred, 4) if n_pred else 0.0])
    print(tabulate(rows, headers=["label", "correct", "predicted", "precision"]))
    acc = sum(p == g for p, (g, _) in zip(preds, test)) / len(test)
    print(f"accuracy: {acc:.4f}")
    os.makedirs("out", exist_ok=True)
    with open("out/metrics.json", "w") as f:
        json.dump({"alpha": args.alpha, "test_accuracy": round(acc, 4)}, f)


if __name__ == "__main__":
    main()
