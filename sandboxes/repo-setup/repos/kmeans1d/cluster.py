"""One-dimensional k-means (Lloyd's algorithm, quantile initialisation)."""

import csv
import json
import os

import click


def kmeans(xs, k, iters=100):
    xs = sorted(xs)
    centres = [xs[int((i + 0.5) * len(xs) / k)] for i in range(k)]
    for _ in range(iters):
        groups = [[] for _ in range(k)]
        for x in xs:
            groups[min(range(k), key=lambda j: abs(x - centres[j]))].append(x)
        new = [sum(g) / len(g) if g else c for g, c in zip(groups, centres)]
        if new == centres:
            break
        centres = new
    inertia = sum(min((x - c) ** 2 for c in centres) for x in xs)
    return centres, inertia


@click.command()
@click.option("--clusters", "-c", type=int, default=2, show_default=True, help="number of clusters")
@click.option("--data", type=click.Path(exists=True), default="data/points.csv", show_default=True)
def main(clusters, data):
    with open(data) as f:
        xs = [float(row["x"]) for row in csv.DictReader(f)]
    centres, inertia = kmeans(xs, clusters)
    click.echo("centres: " + ", ".join(f"{c:.4f}" for c in centres))
    click.echo(f"inertia: {inertia:.4f}")
    os.makedirs("out", exist_ok=True)
    with open("out/result.json", "w") as f:
        json.dump({"clusters": clusters, "centres": centres, "inertia": round(inertia, 4)}, f)


if __name__ == "__main__":
    main()
