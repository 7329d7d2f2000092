"""Score a model.py: accuracy of predict(params, x) against labels (dev labels here, hidden test labels
for the official score). Prints JSON."""

import argparse
import importlib.util
import json
import os
import random

D = 6
HERE = os.path.dirname(os.path.abspath(__file__))


def inputs(seed, n):
    r = random.Random(seed)
    return [[r.gauss(0, 2) for _ in range(D)] for _ in range(n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--solution", default="model.py")
    ap.add_argument("--labels", default=os.path.join(HERE, "dev_labels.json"))
    ap.add_argument("--seed", type=int, default=101)
    a = ap.parse_args()
    with open(os.path.join(HERE, "weights.json")) as f:
        params = json.load(f)
    with open(a.labels) as f:
        labels = json.load(f)
    try:
        spec = importlib.util.spec_from_file_location("model", a.solution)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        hits = sum(mod.predict(params, x) == y for x, y in zip(inputs(a.seed, len(labels)), labels))
    except Exception as e:  # the solution's failure is a score, not a crash of the scorer
        print(json.dumps({"score": None, "error": "%s: %s" % (type(e).__name__, e)}))
        return
    print(json.dumps({"score": hits / len(labels), "examples": len(labels)}))


if __name__ == "__main__":
    main()
