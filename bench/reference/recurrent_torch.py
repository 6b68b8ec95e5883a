"""Writes nn/tests/fixtures/recurrent.json: PyTorch's RNN, GRU and LSTM on a short sequence in f64.

For each case: the parameters (state-dict names and shapes), the input, the initial state, the
outputs, the final state(s), and the gradients of a fixed weighted sum of outputs and final
states with respect to the input, the initial state and every parameter. nn/tests/recurrent.rs
runs pente's layers with the same parameters and compares.

Run: python bench/reference/recurrent_torch.py  (torch; writes the JSON next to the Rust test)
"""
import json
import pathlib

import torch

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)

SEQ, BATCH, INPUT, HIDDEN = 4, 3, 3, 5


def flat(t):
    return {"shape": list(t.shape), "data": [float(v) for v in t.detach().reshape(-1).tolist()]}


def case(name, module, kind, batch_first):
    layers = module.num_layers
    x_shape = (BATCH, SEQ, INPUT) if batch_first else (SEQ, BATCH, INPUT)
    x = torch.randn(*x_shape, requires_grad=True)
    h0 = torch.randn(layers, BATCH, HIDDEN, requires_grad=True)
    state = h0
    c0 = None
    if kind == "lstm":
        c0 = torch.randn(layers, BATCH, HIDDEN, requires_grad=True)
        state = (h0, c0)
    out, final = module(x, state)
    w_out = torch.randn(*out.shape)
    w_h = torch.randn(layers, BATCH, HIDDEN)
    loss = (out * w_out).sum()
    if kind == "lstm":
        h_n, c_n = final
        w_c = torch.randn(layers, BATCH, HIDDEN)
        loss = loss + (h_n * w_h).sum() + (c_n * w_c).sum()
    else:
        h_n, c_n, w_c = final, None, None
        loss = loss + (h_n * w_h).sum()
    loss.backward()
    rec = {
        "name": name,
        "kind": kind,
        "num_layers": layers,
        "batch_first": batch_first,
        "bias": module.bias,
        "nonlinearity": getattr(module, "nonlinearity", "tanh"),
        "input_size": INPUT,
        "hidden_size": HIDDEN,
        "params": {k: flat(v) for k, v in module.state_dict().items()},
        "x": flat(x),
        "h0": flat(h0),
        "out": flat(out),
        "h_n": flat(h_n),
        "w_out": flat(w_out),
        "w_h": flat(w_h),
        "loss": float(loss.detach()),
        "grad_x": flat(x.grad),
        "grad_h0": flat(h0.grad),
        "grads": {k: flat(v.grad) for k, v in module.named_parameters()},
    }
    if kind == "lstm":
        rec.update({"c0": flat(c0), "c_n": flat(c_n), "w_c": flat(w_c), "grad_c0": flat(c0.grad)})
    return rec


cases = [
    case("gru_2_layers", torch.nn.GRU(INPUT, HIDDEN, num_layers=2), "gru", False),
    case("lstm_2_layers", torch.nn.LSTM(INPUT, HIDDEN, num_layers=2), "lstm", False),
    case("rnn_tanh_batch_first", torch.nn.RNN(INPUT, HIDDEN, num_layers=2, batch_first=True), "rnn", True),
    case("rnn_relu_no_bias", torch.nn.RNN(INPUT, HIDDEN, nonlinearity="relu", bias=False), "rnn", False),
    case("gru_batch_first_no_bias", torch.nn.GRU(INPUT, HIDDEN, bias=False, batch_first=True), "gru", True),
]
doc = {"written_by": f"bench/reference/recurrent_torch.py, torch {torch.__version__}", "cases": cases}
out = pathlib.Path(__file__).resolve().parents[2] / "nn/tests/fixtures/recurrent.json"
out.write_text(json.dumps(doc, separators=(",", ":")) + "\n")
print(f"wrote {out} ({out.stat().st_size} bytes)")
