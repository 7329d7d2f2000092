"""Score a count_close_pairs solution: exactness first, then log(best time / calibration time). Prints JSON."""

import argparse
import importlib.util
import json
import math
import random
import time

N, R, REPEATS, LIMIT = 4000, 0.5, 5, 60.0


def naive(xs, r):
    n, c = len(xs), 0
    for i in range(n):
        xi = xs[i]
        for j in range(i + 1, n):
            if abs(xi - xs[j]) <= r:
                c += 1
    return c


def calibration():
    """A fixed pure-Python workload: the naive kernel on 1,000 points (best of 3)."""
    xs = [random.Random(7).uniform(0, 1000) for _ in range(1000)]
    best = math.inf
    for _ in range(3):
        t0 = time.perf_counter()
        naive(xs, R)
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--solution", default="solution.py")
    path = ap.parse_args().solution
    rng = random.Random(2024)
    xs = [rng.uniform(0, 1000) for _ in range(N)]
    small = xs[:300]
    try:
        spec = importlib.util.spec_from_file_location("solution", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        if mod.count_close_pairs(list(small), R) != naive(small, R):
            raise ValueError("wrong answer on 300 points")
        want, best = naive(xs, R), math.inf
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            got = mod.count_close_pairs(list(xs), R)
            best = min(best, time.perf_counter() - t0)
            if got != want:
                raise ValueError("wrong answer on %d points: %r, expected %d" % (N, got, want))
            if best > LIMIT:
                raise TimeoutError("over %gs" % LIMIT)
    except Exception as e:  # the solution's failure is a score, not a crash of the scorer
        print(json.dumps({"score": None, "error": "%s: %s" % (type(e).__name__, e)}))
        return
    cal = calibration()
    print(json.dumps({"score": math.log(best / cal), "seconds": best, "calibration_seconds": cal}))


if __name__ == "__main__":
    main()
