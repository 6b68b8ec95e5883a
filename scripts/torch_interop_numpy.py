#!/usr/bin/env python3
"""The NumPy-only half of the PyTorch interop check (scripts/torch_interop_numpy.sh runs it):

1. the GPT state dict PyTorch wrote (models/tests/fixtures/torch/gpt.safetensors) goes through
   `pente import --torch` and back out through `pente export --torch`: the file pente writes has
   exactly PyTorch's names, dtypes, shapes and values, bit for bit, and `"format": "pt"`;
2. `pente char-lm eval` of the imported model gives PyTorch's validation loss (stored beside the
   fixture) to the 4 decimals it prints;
3. a state dict with problems (one tensor in pente's layout instead of PyTorch's, one missing,
   one extra) is refused by `pente import` with all three named, and nothing is written;
4. `pente export --torch` of a digits CNN has the names and shapes of mnist_torch.py's
   nn.Sequential (conv weights as PyTorch's, dense weights (out, in)).

Usage: torch_interop_numpy.py WORK_DIR PENTE
"""
import os
import re
import subprocess
import sys

import numpy as np
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
import char_lm_data  # noqa: E402

FIXTURES = os.path.join(ROOT, "models", "tests", "fixtures", "torch")
# mnist_torch.py's build("cnn"): items 0 and 2 are convolutions, 7 and 10 dense layers
CNN = {"0.weight": (32, 1, 3, 3), "0.bias": (32,), "2.weight": (64, 32, 3, 3), "2.bias": (64,),
       "7.weight": (128, 9216), "7.bias": (128,), "10.weight": (10, 128), "10.bias": (10,)}


def run(cmd, ok=True):
    print("$", " ".join(cmd), flush=True)
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    print((p.stdout + p.stderr).rstrip(), flush=True)
    if ok and p.returncode != 0:
        sys.exit(f"failed with status {p.returncode}")
    return p


def main():
    work, pente = sys.argv[1], os.path.abspath(sys.argv[2])
    corpus = os.path.join(FIXTURES, "corpus.txt")
    torch_file = os.path.join(FIXTURES, "gpt.safetensors")
    with safe_open(os.path.join(FIXTURES, "gpt_io.safetensors"), framework="numpy") as f:
        meta = f.metadata()
    config = dict(kv.split("=") for kv in meta["config"].split(","))

    # 1. PyTorch → pente → PyTorch, bit for bit
    template, imported = os.path.join(work, "template.ckpt"), os.path.join(work, "gpt.ckpt")
    run([pente, "--out", work, "char-lm", "train", "--model", "gpt", "--steps", "1", "--batch-size", "2",
         "--corpus", corpus, "--block", config["block"], "--n-embd", config["n_embd"], "--n-head",
         config["n_head"], "--n-layer", config["n_layer"], "--save", template])
    run([pente, "import", "--torch", torch_file, "--like", template, "--save", imported])
    back = os.path.join(work, "back.safetensors")
    run([pente, "export", "--torch", back, "--load", imported])
    theirs, ours = load_file(torch_file), load_file(back)
    assert list(ours) == list(theirs) or sorted(ours) == sorted(theirs), (sorted(ours), sorted(theirs))
    for name, t in theirs.items():
        o = ours[name]
        assert o.dtype == np.float32 and o.shape == t.shape, (name, o.dtype, o.shape, t.shape)
        assert np.array_equal(o.view(np.uint32), t.view(np.uint32)), f"{name}: values differ"
    with safe_open(back, framework="numpy") as f:
        assert f.metadata()["format"] == "pt" and f.metadata()["pente.model"] == "char-lm", f.metadata()
    print(f"1. {len(theirs)} tensors PyTorch wrote came back from pente with PyTorch's names, shapes and bits")

    # 2. the validation loss PyTorch computed
    with open(corpus, encoding="utf-8") as f:
        _, val_text = char_lm_data.split(f.read())
    val_file = os.path.join(work, "val.txt")
    with open(val_file, "w", encoding="utf-8") as f:
        f.write(val_text)
    out = run([pente, "char-lm", "eval", "--load", imported, val_file]).stdout
    loss = float(re.search(r": ([0-9.]+) nats per character", out).group(1))
    torch_loss = float(meta["val_loss"])
    assert abs(loss - torch_loss) <= 0.5e-4 + 1e-6, (loss, torch_loss)
    print(f"2. validation loss: pente {loss:.4f}, PyTorch {torch_loss:.6f}")

    # 3. a state dict with three problems is refused, all three named, nothing written
    bad = dict(theirs)
    bad["blocks.0.mlp.0.weight"] = np.ascontiguousarray(bad["blocks.0.mlp.0.weight"].T)
    del bad["norm.bias"]
    bad["lm_head.weight"] = theirs["tokens.weight"]
    bad_file, not_written = os.path.join(work, "bad.safetensors"), os.path.join(work, "never.ckpt")
    save_file(bad, bad_file)
    p = run([pente, "import", "--torch", bad_file, "--like", template, "--save", not_written], ok=False)
    assert p.returncode == 1, p.returncode
    for needle in ["(3 problems)", "`blocks.0.mlp.0.weight`: shape [16, 64] in the file, the model expects [64, 16]",
                   "missing `norm.bias` (expected shape [16])", "unexpected `lm_head.weight`"]:
        assert needle in p.stderr, needle
    assert not os.path.exists(not_written)
    print("3. a state dict with three problems: all three named, nothing written")

    # 4. the digits CNN in mnist_torch.py's names and layouts
    cnn, cnn_file = os.path.join(work, "cnn.ckpt"), os.path.join(work, "cnn.safetensors")
    run([pente, "--out", work, "digits", "train", "--model", "cnn", "--epochs", "1", "--max-steps", "1",
         "--validation", "0", "--no-figures", "--save", cnn])
    run([pente, "export", "--torch", cnn_file, "--load", cnn])
    got = {k: v.shape for k, v in load_file(cnn_file).items()}
    assert got == CNN, got
    print("4. the digits CNN exports with mnist_torch.py's names and shapes")
    print("torch interop (numpy half): ok")


if __name__ == "__main__":
    main()
