"""scalar-mlp on the `micrograd` package: MLP 2-16-16-1 of scalar Values, tanh hidden layers,
mean squared error over 100 points, full-batch SGD lr 0.05. Prints one JSON line.

micrograd 0.1.0 has no tanh, so one is added as a single node with a closure backward, the way
the package writes its own relu.  Usage: python scalar_micrograd.py [warmup] [steps]
"""
import json
import math
import sys
import time

from micrograd.engine import Value

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
    warmup = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    layers = [([[Value(w) for w in row] for row in ws], [Value(b) for b in bs]) for ws, bs in initial_weights()]
    params = [p for ws, bs in layers for row in ws for p in row] + [p for ws, bs in layers for p in bs]
    xs, ys = points()

    def forward(x):
        h = list(x)
        for depth, (ws, bs) in enumerate(layers):
            pre = [sum((w * hi for w, hi in zip(row, h)), b) for row, b in zip(ws, bs)]
            h = [tanh(p) for p in pre] if depth < len(layers) - 1 else pre
        return h[0]

    def step():
        loss = sum((forward(x) - y) ** 2 for x, y in zip(xs, ys)) * (1.0 / len(xs))
        for p in params:
            p.grad = 0.0
        loss.backward()
        for p in params:
            p.data -= LR * p.grad
        return loss.data

    first = step()
    for _ in range(warmup - 1):
        step()
    start = time.perf_counter()
    last = None
    for _ in range(steps):
        last = step()
    seconds = time.perf_counter() - start
    print(json.dumps({"workload": "scalar-mlp", "impl": "micrograd-0.1.0", "steps": steps,
                      "steps_per_s": round(steps / seconds, 3), "loss_first": repr(first),
                      "loss_last": repr(last), "loss_after_steps": warmup + steps}), flush=True)


if __name__ == "__main__":
    main()
