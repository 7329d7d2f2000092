"""Count close pairs. Keep the signature; make it fast."""


def count_close_pairs(xs: list[float], r: float) -> int:
    """How many pairs i < j have |xs[i] - xs[j]| <= r."""
    n = len(xs)
    count = 0
    for i in range(n):
        xi = xs[i]
        for j in range(i + 1, n):
            if abs(xi - xs[j]) <= r:
                count += 1
    return count
