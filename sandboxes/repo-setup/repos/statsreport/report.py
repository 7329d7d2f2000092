"""Summarise data/measurements.csv: mean, median and the largest moving average of 'value'."""

import argparse
import csv
import json
import os
import statistics

from more_itertools import windowed
from tabulate import tabulate


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--window", type=int, default=7)
    args = ap.parse_args()
    with open("data/measurements.csv") as f:
        values = [float(r["value"]) for r in csv.DictReader(f)]
    moving = [sum(w) / args.window for w in windowed(values, args.window)]
    stats = {"mean": statistics.fmean(values), "median": statistics.median(values), "max_moving_average": max(moving)}
    print(tabulate([[k, round(v, 4)] for k, v in stats.items()], headers=["statistic", "value"]))
    print(f"max moving average: {stats['max_moving_average']:.4f} (window {args.window})")
    os.makedirs("out", exist_ok=True)
    with open("out/stats.json", "w") as f:
        json.dump({k: round(v, 4) for k, v in stats.items()} | {"window": args.window}, f)


if __name__ == "__main__":
    main()
