"""Score a fit() solution: the validation log-loss of the weights it returns after <= 100 oracle calls."""

import argparse
import importlib.util
import json
import math
import random

DIM, N, CALLS = 8, 400, 100
SCALES = [1.0, 0.5, 10.0, 100.0, 0.1, 2.0, 50.0, 1.0]


def dataset(seed):
    rng = random.Random(seed)
    true_w = [1.5, -2.0, 0.8, -1.2, 2.5, 0.7, -0.9, 1.1]
    X, y = [], []
    for _ in range(N):
        z = [rng.gauss(0, 1) for _ in range(DIM)]
        logit = sum(a * b for a, b in zip(true_w, z)) + 0.3
        X.append([zi * s for zi, s in zip(z, SCALES)])
        y.append(1.0 if rng.random() < 1 / (1 + math.exp(-logit)) else 0.0)
    return X, y


def loss_and_grad(w, X, y):
    loss, grad = 0.0, [0.0] * (DIM + 1)
    for xi, yi in zip(X, y):
        z = sum(a * b for a, b in zip(w, xi)) + w[DIM]
        p = 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
        p = min(max(p, 1e-12), 1 - 1e-12)
        loss -= yi * math.log(p) + (1 - yi) * math.log(1 - p)
        for k in range(DIM):
            grad[k] += (p - yi) * xi[k]
        grad[DIM] += p - yi
    return loss / len(X), [g / len(X) for g in grad]


def make_oracle(X, y):
    calls = [0]

    def oracle(w):
        calls[0] += 1
        if calls[0] > CALLS:
            raise RuntimeError("more than %d oracle calls" % CALLS)
        if len(w) != DIM + 1:
            raise ValueError("w must have %d entries" % (DIM + 1))
        return loss_and_grad([float(v) for v in w], X, y)

    return oracle, calls


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--solution", default="solution.py")
    path = ap.parse_args().solution
    Xtr, ytr = dataset(1)
    Xva, yva = dataset(2)
    oracle, calls = make_oracle(Xtr, ytr)
    try:
        spec = importlib.util.spec_from_file_location("solution", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        w = [float(v) for v in mod.fit(oracle, DIM)]
        if len(w) != DIM + 1:
            raise ValueError("fit returned %d numbers, expected %d" % (len(w), DIM + 1))
        val, _ = loss_and_grad(w, Xva, yva)
        if not math.isfinite(val):
            raise ValueError("non-finite validation loss")
    except Exception as e:  # the solution's failure is a score, not a crash of the scorer
        print(json.dumps({"score": None, "error": "%s: %s" % (type(e).__name__, e)}))
        return
    print(json.dumps({"score": val, "oracle_calls": calls[0]}))


if __name__ == "__main__":
    main()
