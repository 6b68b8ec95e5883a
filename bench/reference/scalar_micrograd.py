"""scalar-mlp on the `micrograd` package: MLP 2-16-16-1 of scalar Values, tanh hidden layers,
mean squared error over 100 points, full-batch SGD lr 0.05, on the fixed problem of
workload_data.py. Prints one JSON line (see harness.py): steps per second; the check is the loss
of the last timed step (before its update), and loss_first the loss of the first step.

micrograd 0.1.0 has no tanh, so one is added as a single node with a closure backward, the way
the package writes its own relu.  Usage: python scalar_micrograd.py [warmup=2] [steps=10]
"""
import math
from importlib.metadata import version

from micrograd.engine import Value

from harness import emit, int_args, timed_steps
from workload_data import initial_weights, points

LR = 0.05


def tanh(v):
    t = math.tanh(v.data)
    out = Value(t, (v,), "tanh")

    def backward():
        v.grad += (1 - t * t) * out.grad

    out._backward = backward
    return out


def main():
    warmup, steps = int_args(2, 10)
    layers = [([[Value(w) for w in row] for row in ws], [Value(b) for b in bs]) for ws, bs in initial_weights()]
    params = [p for ws, bs in layers for row in ws for p in row] + [p for ws, bs in layers for p in bs]
    xs, ys = points()

    def forward(x):
        h = list(x)
        for depth, (ws, bs) in enumerate(layers):
            pre = [sum((w * hi for w, hi in zip(row, h)), b) for row, b in zip(ws, bs)]
            h = [tanh(p) for p in pre] if depth < len(layers) - 1 else pre
        return h[0]

    def step(_):
        loss = sum((forward(x) - y) ** 2 for x, y in zip(xs, ys)) * (1.0 / len(xs))
        for p in params:
            p.grad = 0.0
        loss.backward()
        for p in params:
            p.data -= LR * p.grad
        return loss.data

    first = step(0)  # the first warm-up step
    seconds, last = timed_steps(max(warmup - 1, 0), steps, step)
    emit("scalar-mlp", "micrograd", "2-16-16-1", "steps_per_s", steps / seconds, steps, seconds, last,
         version("micrograd"), 1, loss_first=first, loss_after_steps=max(warmup, 1) + steps)


if __name__ == "__main__":
    main()
