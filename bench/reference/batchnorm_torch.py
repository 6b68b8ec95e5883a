"""PyTorch reference values for pente's BatchNorm1d and BatchNorm2d.

Writes nn/tests/fixtures/batchnorm_torch.json, read by nn/tests/batch_norm_torch.rs: for each
case, three training steps (inputs, the training-mode output and the gradients of
sum(y * r) with respect to x, weight and bias at the first step), the running statistics
after the three steps, and the evaluation-mode output of a fourth input.

    /work/venv-peers/bin/python bench/reference/batchnorm_torch.py
"""
import json
import math
import os

import torch

torch.set_default_dtype(torch.float64)


def values(shape, salt):
    """Deterministic, spread-out inputs without a random generator (reproducible anywhere)."""
    n = math.prod(shape)
    v = [math.sin(1.3 * i + salt) * 2.0 + math.cos(0.7 * i * salt + 0.1) for i in range(n)]
    return torch.tensor(v).reshape(shape)


def case(name, module, shape):
    c = shape[1]
    with torch.no_grad():
        module.weight.copy_(torch.tensor([0.5 + 0.25 * i for i in range(c)]))
        module.bias.copy_(torch.tensor([0.1 * i - 0.2 for i in range(c)]))
    module.train()
    steps = []
    for step in range(3):
        x = values(shape, step + 1.0).requires_grad_(True)
        r = values(shape, 10.0 + step)
        y = module(x)
        module.zero_grad()
        (y * r).sum().backward()
        steps.append({
            "x": x.detach().flatten().tolist(),
            "r": r.flatten().tolist(),
            "y": y.detach().flatten().tolist(),
            "grad_x": x.grad.flatten().tolist(),
            "grad_weight": module.weight.grad.tolist(),
            "grad_bias": module.bias.grad.tolist(),
        })
    module.eval()
    x_eval = values(shape, 7.0)
    with torch.no_grad():
        y_eval = module(x_eval)
    return {
        "name": name,
        "shape": list(shape),
        "weight": module.weight.detach().tolist(),
        "bias": module.bias.detach().tolist(),
        "steps": steps,
        "running_mean": module.running_mean.tolist(),
        "running_var": module.running_var.tolist(),
        "num_batches_tracked": int(module.num_batches_tracked),
        "x_eval": x_eval.flatten().tolist(),
        "y_eval": y_eval.flatten().tolist(),
    }


cases = [
    case("batch_norm_2d", torch.nn.BatchNorm2d(3), (4, 3, 3, 2)),
    case("batch_norm_1d_nc", torch.nn.BatchNorm1d(4), (5, 4)),
    case("batch_norm_1d_ncl", torch.nn.BatchNorm1d(2), (3, 2, 5)),
]
out = os.path.join(os.path.dirname(__file__), "..", "..", "nn", "tests", "fixtures", "batchnorm_torch.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f)
print(f"wrote {os.path.normpath(out)}")
