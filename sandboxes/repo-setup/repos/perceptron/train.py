"""Train a perceptron; report training errors per epoch and dev accuracy."""

import argparse
import csv
import json
import os
import random


def load(path):
    with open(path) as f:
        return [([float(r["x1"]), float(r["x2"])], int(r["label"])) for r in csv.DictReader(f)]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", default="data/train.csv")
    ap.add_argument("--dev", default="data/dev.csv")
    args = ap.parse_args()
    train, dev = load(args.train), load(args.dev)
    rng = random.Random(args.seed)
    w, b = [0.0, 0.0], 0.0
    errors = 0
    for epoch in range(1, args.epochs + 1):
        rng.shuffle(train)
        errors = 0
        for x, y in train:
            if y * (w[0] * x[0] + w[1] * x[1] + b) <= 0:
                w = [w[0] + args.lr * y * x[0], w[1] + args.lr * y * x[1]]
                b += args.lr * y
                errors += 1
        print(f"epoch {epoch}: {errors} training errors")
    acc = sum((1 if w[0] * x[0] + w[1] * x[1] + b > 0 else -1) == y for x, y in dev) / len(dev)
    print(f"dev accuracy: {acc:.4f}")
    os.makedirs("out", exist_ok=True)
    with open("out/metrics.json", "w") as f:
        json.dump({"epochs": args.epochs, "train_errors": errors, "dev_accuracy": round(acc, 4)}, f)


if __name__ == "__main__":
    main()
