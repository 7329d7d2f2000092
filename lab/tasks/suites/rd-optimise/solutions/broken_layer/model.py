"""Reference solution: layer norm divides by the standard deviation (sqrt of variance + eps), not the variance."""

import math


def linear(W, b, x):
    return [sum(wij * xj for wij, xj in zip(row, x)) + bi for row, bi in zip(W, b)]


def layer_norm(x, gamma, beta, eps=1e-5):
    mean = sum(x) / len(x)
    var = sum((v - mean) ** 2 for v in x) / len(x)
    return [g * (v - mean) / math.sqrt(var + eps) + b for v, g, b in zip(x, gamma, beta)]


def relu(x):
    return [max(0.0, v) for v in x]


def predict(params, x):
    h = relu(layer_norm(linear(params["W1"], params["b1"], x), params["gamma"], params["beta"]))
    logits = linear(params["W2"], params["b2"], h)
    return max(range(len(logits)), key=logits.__getitem__)
