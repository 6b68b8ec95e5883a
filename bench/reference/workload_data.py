"""The fixed scalar-mlp problem of `pente bench`, built from the 64-bit LCG (Knuth's MMIX constants).

pente's `models/src/bench/scalar_mlp.rs` draws the same numbers in the same order, so both sides start
from identical points and weights and must report identical losses.
"""

MASK = (1 << 64) - 1


def lcg(seed):
    """Yields floats in [0, 1): the top 53 bits of each 64-bit state."""
    state = seed & MASK
    while True:
        state = (state * 6364136223846793005 + 1442695040888963407) & MASK
        yield (state >> 11) / float(1 << 53)


def points(n=100):
    """n points drawn as (x0, x1) pairs in [-1, 1)^2 from lcg(42); label +1 where x0*x1 > 0."""
    draw = lcg(42)
    xs, ys = [], []
    for _ in range(n):
        x0 = 2 * next(draw) - 1
        x1 = 2 * next(draw) - 1
        xs.append((x0, x1))
        ys.append(1.0 if x0 * x1 > 0 else -1.0)
    return xs, ys


def initial_weights(sizes=(2, 16, 16, 1)):
    """Per layer, per neuron: its input weights then its bias, uniform in [-1, 1) from lcg(7)."""
    draw = lcg(7)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        weights, biases = [], []
        for _ in range(n_out):
            weights.append([2 * next(draw) - 1 for _ in range(n_in)])
            biases.append(2 * next(draw) - 1)
        layers.append((weights, biases))
    return layers
