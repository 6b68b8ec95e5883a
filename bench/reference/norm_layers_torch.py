"""Reference values for pente's RmsNorm, GroupNorm, Embedding with padding_idx and AlphaDropout.

Computes forward values and gradients with PyTorch (nn.RMSNorm, nn.GroupNorm, nn.Embedding,
F.alpha_dropout) and writes them to nn/tests/fixtures/torch/norm_layers.json, which
nn/tests/norm_layers.rs reads. Each gradient is of `(y * g).sum()` for a fixed random `g`, so
the incoming gradient is not all ones. Run from the repository root:

    /work/venv-peers/bin/python bench/reference/norm_layers_torch.py
"""

import json
import pathlib

import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parents[2] / "nn/tests/fixtures/torch/norm_layers.json"


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def case(module, x, extra_params):
    """Forward, then gradients of (y * g).sum() w.r.t. x and the module's parameters."""
    x = x.clone().requires_grad_(True)
    y = module(x)
    g = torch.randn(y.shape, dtype=y.dtype, generator=GEN)
    (y * g).sum().backward()
    out = {"x": flat(x), "shape": list(x.shape), "y": flat(y), "g": flat(g), "grad_x": flat(x.grad)}
    for name in extra_params:
        p = getattr(module, name)
        out[name] = flat(p)
        out["grad_" + name] = flat(p.grad)
    return out


GEN = torch.Generator().manual_seed(24)
fixtures = {"torch_version": torch.__version__}

# RMSNorm, eps=None (the dtype's machine epsilon), in f64 and f32, with a non-trivial weight.
for dtype, key in [(torch.float64, "rms_norm_f64"), (torch.float32, "rms_norm_f32")]:
    m = torch.nn.RMSNorm(5, dtype=dtype)
    with torch.no_grad():
        m.weight.copy_(torch.randn(5, dtype=dtype, generator=GEN))
    x = torch.randn(2, 3, 5, dtype=dtype, generator=GEN) * 2.0 + 0.3
    fixtures[key] = case(m, x, ["weight"])

# RMSNorm with an explicit eps and no weight.
m = torch.nn.RMSNorm(4, eps=1e-2, elementwise_affine=False, dtype=torch.float64)
fixtures["rms_norm_eps_no_affine"] = case(m, torch.randn(3, 4, dtype=torch.float64, generator=GEN) * 0.2, [])

# GroupNorm(3 groups, 6 channels) over (N, C, H, W), with non-trivial weight and bias.
m = torch.nn.GroupNorm(3, 6, dtype=torch.float64)
with torch.no_grad():
    m.weight.copy_(torch.randn(6, dtype=torch.float64, generator=GEN))
    m.bias.copy_(torch.randn(6, dtype=torch.float64, generator=GEN))
x = torch.randn(2, 6, 3, 2, dtype=torch.float64, generator=GEN) * 1.5 - 0.4
fixtures["group_norm"] = case(m, x, ["weight", "bias"])
# GroupNorm on (N, C, L) without affine parameters, one group per two channels.
m = torch.nn.GroupNorm(2, 4, affine=False, dtype=torch.float64)
fixtures["group_norm_no_affine"] = case(m, torch.randn(3, 4, 5, dtype=torch.float64, generator=GEN), [])

# Embedding(6, 4, padding_idx=2): the padding row is initialized to zeros and gets no gradient.
torch.manual_seed(0)
m = torch.nn.Embedding(6, 4, padding_idx=2, dtype=torch.float64)
ids = torch.tensor([[1, 2, 3], [2, 2, 5]])
weight = flat(m.weight)
y = m(ids)
g = torch.randn(y.shape, dtype=y.dtype, generator=GEN)
(y * g).sum().backward()
fixtures["embedding_padding"] = {
    "padding_idx": 2,
    "ids": flat(ids),
    "weight": weight,
    "y": flat(y),
    "g": flat(g),
    "grad_weight": flat(m.weight.grad),
}

# AlphaDropout(p=0.2): the same seed draws the same mask for zeros and ones, which gives the
# slope a on kept elements, their shift, and the value of dropped ones.
p = 0.2
torch.manual_seed(1)
y0 = F.alpha_dropout(torch.zeros(4000, dtype=torch.float64), p, training=True)
torch.manual_seed(1)
y1 = F.alpha_dropout(torch.ones(4000, dtype=torch.float64), p, training=True)
kept = y1 != y0
fixtures["alpha_dropout"] = {
    "p": p,
    "a": float((y1 - y0)[kept][0]),
    "kept_shift": float(y0[kept][0]),
    "dropped_value": float(y0[~kept][0]),
    "kept_slopes_agree": bool(torch.allclose((y1 - y0)[kept], (y1 - y0)[kept][0])),
}

OUT.parent.mkdir(parents=True, exist_ok=True)
OUT.write_text(json.dumps(fixtures, indent=None, separators=(",", ":")) + "\n")
print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
