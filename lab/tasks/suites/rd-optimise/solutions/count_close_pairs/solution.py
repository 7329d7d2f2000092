"""Reference solution: sort once, then count each point's neighbours to the right with bisect (O(n log n))."""

from bisect import bisect_right


def count_close_pairs(xs: list[float], r: float) -> int:
    """How many pairs i < j have |xs[i] - xs[j]| <= r."""
    s = sorted(xs)
    return sum(bisect_right(s, x + r, i + 1) - i - 1 for i, x in enumerate(s))
