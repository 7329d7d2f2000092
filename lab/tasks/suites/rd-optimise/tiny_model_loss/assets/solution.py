"""Train a logistic-regression model through a gradient oracle. Keep the signature; lower the loss."""


def fit(oracle, dim: int) -> list[float]:
    """Return dim weights followed by a bias. oracle(w) -> (loss, grad); at most 100 calls."""
    w = [0.0] * (dim + 1)
    lr = 1e-4
    for _ in range(100):
        _, grad = oracle(w)
        w = [wi - lr * gi for wi, gi in zip(w, grad)]
    return w
