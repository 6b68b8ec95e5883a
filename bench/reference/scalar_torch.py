"""scalar-mlp with PyTorch 0-d tensors: micrograd's graph, one autograd node per scalar
operation, on the fixed problem of workload_data.py (the same points, weights and operation order
as scalar_micrograd.py and pente), in f64 so that its losses equal theirs to rounding.

MLP 2→16→16→1, tanh hidden layers, linear output, mean squared error over the 100 points,
full-batch SGD lr 0.05. One thread (a 0-d op has nothing to share). Figure: steps per second.
The check is the loss of the last timed step (before its update).

Usage: python scalar_torch.py [warmup=1] [steps=5]
"""
import torch

from harness import emit, int_args, timed_steps
from workload_data import initial_weights, points

LR = 0.05


def main():
    warmup, steps = int_args(1, 5)
    torch.set_num_threads(1)
    layers = [([[torch.tensor(w, dtype=torch.float64, requires_grad=True) for w in row] for row in ws],
               [torch.tensor(b, dtype=torch.float64, requires_grad=True) for b in bs])
              for ws, bs in initial_weights()]
    params = [p for ws, bs in layers for row in ws for p in row] + [p for ws, bs in layers for p in bs]
    xs, ys = points()
    inputs = [[torch.tensor(v, dtype=torch.float64) for v in x] for x in xs]

    def forward(x):
        h = x
        for depth, (ws, bs) in enumerate(layers):
            pre = []
            for row, b in zip(ws, bs):
                acc = b
                for w, hi in zip(row, h):
                    acc = acc + w * hi
                pre.append(acc)
            h = [p.tanh() for p in pre] if depth < len(layers) - 1 else pre
        return h[0]

    def step(_):
        loss = None
        for x, y in zip(inputs, ys):
            err = (forward(x) - y) ** 2
            loss = err if loss is None else loss + err
        loss = loss * (1.0 / len(inputs))
        for p in params:
            p.grad = None
        loss.backward()
        with torch.no_grad():
            for p in params:
                p -= LR * p.grad
        return loss.item()

    seconds, last = timed_steps(warmup, steps, step)
    emit("scalar-mlp", "torch-0d", "2-16-16-1", "steps_per_s", steps / seconds, steps, seconds, last,
         torch.__version__, torch.get_num_threads())


if __name__ == "__main__":
    main()
