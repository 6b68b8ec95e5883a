"""Values PyTorch computes for pente's Conv1d, ConvTranspose2d, AvgPool2d and AdaptiveAvgPool2d.

Writes nn/tests/fixtures/conv_pool_torch.json, read by nn/tests/conv_pool_torch.rs. Each case
has the layer's options, its input, parameters, an upstream gradient `seed` (the loss is
sum(y * seed), so the incoming gradient is not all ones), the output and the gradients with
respect to the input, weight and bias, all in float64. Shapes are odd, strides above one and
paddings non-zero where the layer has them.

    /work/venv-peers/bin/python bench/reference/conv_pool_torch.py   # or any torch >= 2
"""

import json
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(24)
OUT = pathlib.Path(__file__).resolve().parents[2] / "nn/tests/fixtures/conv_pool_torch.json"


def tensor(t):
    return {"shape": list(t.shape), "data": [round(v, 17) for v in t.detach().reshape(-1).tolist()]}


def rand(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def case(layer, options, x, params, forward):
    x = x.clone().requires_grad_(True)
    params = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    y = forward(x, **params)
    seed = rand(*y.shape)
    (y * seed).sum().backward()
    out = {"layer": layer, "options": options, "x": tensor(x), "seed": tensor(seed), "y": tensor(y), "grad_x": tensor(x.grad)}
    for k, v in params.items():
        out[k] = tensor(v)
        out["grad_" + k] = tensor(v.grad)
    return out


cases = []
for n, c_in, c_out, length, k, stride, pad in [(2, 3, 4, 9, 3, 2, 1), (1, 2, 3, 7, 4, 3, 2), (3, 1, 2, 5, 1, 1, 0)]:
    opts = {"in_ch": c_in, "out_ch": c_out, "kernel_size": k, "stride": stride, "padding": pad}
    cases.append(case("Conv1d", opts, rand(n, c_in, length), {"weight": rand(c_out, c_in, k), "bias": rand(c_out)},
                      lambda x, weight, bias: F.conv1d(x, weight, bias, stride=stride, padding=pad)))
for n, c_in, c_out, h, w, k, stride, pad, out_pad in [(2, 3, 2, 3, 4, 3, 2, 1, 1), (1, 2, 3, 3, 2, 2, 3, 0, 2),
                                                       (2, 1, 2, 5, 3, 3, 1, 1, 0)]:
    opts = {"in_ch": c_in, "out_ch": c_out, "kernel_size": k, "stride": stride, "padding": pad,
            "output_padding": out_pad}
    cases.append(case("ConvTranspose2d", opts, rand(n, c_in, h, w),
                      {"weight": rand(c_in, c_out, k, k), "bias": rand(c_out)},
                      lambda x, weight, bias: F.conv_transpose2d(x, weight, bias, stride=stride, padding=pad,
                                                                 output_padding=out_pad)))
for shape, k, stride, pad in [((2, 3, 7, 6), 3, 2, 1), ((1, 2, 5, 9), 2, 2, 1), ((2, 1, 6, 5), 4, 3, 2)]:
    opts = {"kernel": k, "stride": stride, "padding": pad}
    cases.append(case("AvgPool2d", opts, rand(*shape), {},
                      lambda x: torch.nn.AvgPool2d(k, stride, pad)(x)))
for shape, out in [((2, 2, 7, 5), (3, 2)), ((1, 3, 5, 9), (4, 4)), ((2, 2, 6, 6), (1, 1)), ((1, 1, 3, 2), (5, 3))]:
    opts = {"output": list(out)}
    cases.append(case("AdaptiveAvgPool2d", opts, rand(*shape), {},
                      lambda x: torch.nn.AdaptiveAvgPool2d(out)(x)))

OUT.write_text(json.dumps({"torch": torch.__version__, "cases": cases}) + "\n")
print(f"wrote {len(cases)} cases to {OUT} ({OUT.stat().st_size} bytes)")
